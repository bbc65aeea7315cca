//! Map methods spelled in the body of a macro the program defines (`#define BUMP(k) counts.increment(k)`).
//!
//! libclang places every token a macro's body produces at the macro's invocation, so a call there has
//! no text of its own to rewrite where it is used. The body itself is the program's text, though, and
//! the rewrite of `counts.increment(` to `__rbcc_m_increment(&counts, ` is a textual one that works for
//! every expansion: the body is rewritten once, where it is defined. The map may be named in the body
//! or come in through a parameter (`#define BUMP(m, k) m.increment(k)`), which the rewrite keeps as it
//! is, so the expansion names the map the caller passed. (bcc refuses map methods inside macros.)

use std::collections::HashSet;

use clang_sys::*;

use super::Rewriter;
use crate::compile::clang::{Node, Token};
use crate::compile::decls::METHODS;

impl Rewriter<'_> {
    /// Rewrite the map method calls in the bodies of the macros `root` defines in the main file; the
    /// methods rewritten, which calls found at a macro's invocation may then use.
    pub(super) fn macro_bodies(&mut self, root: &[Node]) -> HashSet<String> {
        let maps: HashSet<String> = self.maps.values().cloned().collect();
        let mut rewritten = HashSet::new();
        for def in root.iter().filter(|n| n.kind == CXCursor_MacroDefinition && n.in_main && n.start < n.end) {
            let first = self.tokens.partition_point(|t| t.start < def.start);
            let body: Vec<&Token> = self.tokens[first..].iter().take_while(|t| t.end <= def.end).collect();
            let skip = if body.first().is_some_and(|t| t.text == "#") { 2 } else { 0 };
            let Some((name, rest)) = body.get(skip..).and_then(|b| b.split_first()) else { continue };
            // a function-like macro's parameter list touches its name: `F(a, b)`, not `F (a, b)`
            let (params, body) = match rest.first() {
                Some(open) if open.text == "(" && open.start == name.end => {
                    let close = rest.iter().position(|t| t.text == ")").unwrap_or(rest.len() - 1);
                    let params: HashSet<&str> = rest[1..close].iter().map(|t| t.text.as_str()).collect();
                    (params, &rest[(close + 1).min(rest.len())..])
                }
                _ => (HashSet::new(), rest),
            };
            for (i, w) in body.windows(4).enumerate() {
                let [base, dot, method, open] = w else { continue };
                let member_of_something = i > 0 && matches!(body[i - 1].text.as_str(), "." | "->");
                if dot.text != "."
                    || open.text != "("
                    || member_of_something
                    || !METHODS.contains(&method.text.as_str())
                    || !(maps.contains(&base.text) || params.contains(base.text.as_str()))
                    || self.source[base.start..open.end].contains('\n')
                {
                    continue;
                }
                let has_args = body.get(i + 4).is_some_and(|t| t.text != ")");
                let sep = if has_args { ", " } else { "" };
                self.replace(base.start, open.end, format!("__rbcc_m_{}(&{}{sep}", method.text, base.text));
                rewritten.insert(method.text.clone());
            }
        }
        rewritten
    }
}
