//! Which text of the main file is an expression's own. libclang places a token that a macro's body
//! produced at the macro's invocation, so an expression built in a macro body (`offsetof`'s
//! `&((type *)0)->member`) shows as a range of the invocation that is not its text: the rewriter must
//! neither wrap that range nor read the expression's operator from the tokens found there.

use clang_sys::*;

use super::{expr_children, Rewriter};
use crate::compile::clang::{Node, Token};

/// A byte range [start, end) of the main file.
pub(super) type Span = (usize, usize);

/// A macro invoked in the main file: its whole text, and the text of each argument.
pub(super) struct Invocation {
    span: Span,
    args: Vec<Span>,
}

const PREFIX_OPS: &[&str] = &["*", "&", "++", "--", "-", "+", "!", "~"];

/// The main file's macro invocations, in order, from libclang's preprocessing record.
pub(super) fn invocations(root: &[Node], tokens: &[Token]) -> Vec<Invocation> {
    let mut out = Vec::new();
    for m in root.iter().filter(|n| n.kind == CXCursor_MacroExpansion && n.in_main) {
        let i = tokens.partition_point(|t| t.start < m.start);
        // An expansion inside another macro's body shows at that macro's name: not one of ours.
        if tokens.get(i).is_none_or(|t| t.start != m.start || t.text != m.name) {
            continue;
        }
        let mut args = Vec::new();
        if tokens.get(i + 1).is_some_and(|t| t.text == "(" && t.end <= m.end) {
            let mut depth = 0;
            let mut arg: Option<Span> = None;
            for t in tokens[i + 1..].iter().take_while(|t| t.end <= m.end) {
                match t.text.as_str() {
                    "(" | "[" | "{" => depth += 1,
                    ")" | "]" | "}" => depth -= 1,
                    "," if depth == 1 => {
                        args.extend(arg.take());
                        continue;
                    }
                    _ => {}
                }
                let inside = depth >= 1 && !(depth == 1 && t.text == "(");
                if inside {
                    arg = Some(arg.map_or((t.start, t.end), |(s, _)| (s, t.end)));
                }
            }
            args.extend(arg);
        }
        out.push(Invocation { span: (m.start, m.end), args });
    }
    out.sort_by_key(|m| m.span);
    out
}

impl Rewriter<'_> {
    /// Whether `n`'s range of the main file is its own text, which an edit may wrap: it lies within
    /// one argument of each macro invocation it meets, or takes such invocations whole, and it is not
    /// the text of its `parent` too (then both came from one macro's body).
    pub(super) fn own_text(&self, n: &Node, parent: Option<Span>) -> bool {
        if !n.in_main || n.start >= n.end || parent == Some((n.start, n.end)) {
            return false;
        }
        let before_end = self.invocations.partition_point(|m| m.span.0 < n.end);
        self.invocations[..before_end].iter().filter(|m| m.span.1 > n.start).all(|m| {
            let whole = n.start <= m.span.0 && m.span.1 <= n.end;
            whole || m.args.iter().any(|&(s, e)| s <= n.start && n.end <= e)
        })
    }

    /// The operator of a unary expression: its first token (prefix) or last (postfix) where that text
    /// is the node's own, else what the types tell (`&`, `*`), else "".
    pub(super) fn unary_op(&self, n: &Node) -> &str {
        if n.unary_by_type == "&" || !self.own_text(n, None) {
            return n.unary_by_type;
        }
        let first = self.token_at_or_after(n.start).map(|t| t.text.as_str()).unwrap_or("");
        if PREFIX_OPS.contains(&first) {
            return first;
        }
        let i = self.tokens.partition_point(|t| t.end <= n.end);
        let last = i.checked_sub(1).and_then(|i| self.tokens.get(i)).map(|t| t.text.as_str()).unwrap_or("");
        if matches!(last, "++" | "--") {
            last
        } else {
            n.unary_by_type
        }
    }

    /// The operator of a binary expression whose text is its own (the token after its left operand),
    /// else "".
    pub(super) fn binary_op(&self, n: &Node) -> &str {
        let ops = expr_children(n);
        let Some(lhs) = ops.first() else {
            return "";
        };
        if !self.own_text(n, None) || !lhs.in_main {
            return "";
        }
        self.token_at_or_after(lhs.end).filter(|t| t.end <= n.end).map(|t| t.text.as_str()).unwrap_or("")
    }
}
