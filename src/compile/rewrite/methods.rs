//! Map method calls of bcc's C dialect (`counts.increment(k)`, `events.perf_submit(ctx, &d, sizeof(d))`)
//! rewritten into the helper macros of bpf/rbcc/helpers.h (`__rbcc_m_increment(&counts, k)`).

use std::fmt::Write as _;

use clang_sys::*;

use super::text::Span;
use super::{expr_children, strip, strip_casts, Rewriter};
use crate::compile::clang::Node;
use crate::compile::decls::METHODS;
use crate::error::Result;

/// Map methods whose first argument is the key: by address, and by value.
const KEY_BY_ADDRESS: &[&str] = &["lookup", "lookup_or_init", "lookup_or_try_init", "update", "insert", "delete"];
const KEY_BY_VALUE: &[&str] = &["increment", "atomic_increment"];

impl Rewriter<'_> {
    /// `counts.increment(...)`: (map name, method, callee node).
    pub(super) fn map_call<'n>(&self, call: &'n Node) -> Option<(String, String, &'n Node)> {
        if call.kind != CXCursor_CallExpr {
            return None;
        }
        let callee = strip(expr_children(call).first()?);
        if callee.kind != CXCursor_MemberRefExpr {
            return None;
        }
        let base = strip(expr_children(callee).first()?);
        if base.kind != CXCursor_DeclRefExpr {
            return None;
        }
        let map = self.maps.get(&base.referenced)?;
        Some((map.clone(), callee.name.clone(), callee))
    }

    pub(super) fn method_call(
        &mut self,
        call: &Node,
        map: &str,
        method: &str,
        callee: &Node,
        args: &[&Node],
    ) -> Result<()> {
        if !METHODS.contains(&method) {
            return Err(self.error_at(call.start, &format!("{map}.{method}() is not a map method rbcc knows")));
        }
        if !callee.in_main {
            return Err(self.error_at(call.start, &format!("{map}.{method}() inside a macro cannot be rewritten")));
        }
        // A call spelled in a macro's body has, in libclang, the extent of the macro's invocation: there
        // is no `map.method(` in the text at that place to rewrite. The body was rewritten where the
        // program defines it (macros.rs); a macro from elsewhere cannot be (bcc refuses them all).
        if callee.start == call.start && callee.end == call.end {
            if self.macro_methods.contains(method) {
                self.record_data(map, method, args);
                return Ok(());
            }
            let name = self.token_at_or_after(call.start).map_or("", |t| t.text.as_str());
            return Err(self.error_at(
                call.start,
                &format!(
                    "{map}.{method}() is spelled inside the macro {name}, where map methods cannot be rewritten; \
                     make {name} a static inline function, or call the method outside it"
                ),
            ));
        }
        let Some(lparen) = self.token_at_or_after(callee.end).filter(|t| t.text == "(").map(|t| t.end) else {
            return Err(self.error_at(call.start, "expected '(' after the map method"));
        };
        let sep = if args.is_empty() { "" } else { ", " };
        self.replace(callee.start, lparen, format!("__rbcc_m_{method}(&{map}{sep}"));
        if let Some(key) = args.first() {
            self.zero_key_padding(key, KEY_BY_VALUE.contains(&method), KEY_BY_ADDRESS.contains(&method));
        }
        self.record_data(map, method, args);
        Ok(())
    }

    /// The record type a perf or ring buffer's submit sends, for Python's `event()`.
    fn record_data(&mut self, map: &str, method: &str, args: &[&Node]) {
        let data = match method {
            "perf_submit" => args.get(1),
            "ringbuf_output" => args.first(),
            _ => None,
        };
        if let Some(data) = data {
            let ty = strip_casts(data).ty.pointee.as_deref().map(|t| t.spelling.clone());
            self.record_event(map, ty.as_deref());
        }
    }

    /// The methods are macros, and the preprocessor splits macro arguments at every comma outside
    /// parentheses: `(struct key_t){a, b}` would reach the macro as two arguments. The spans of the
    /// arguments that have such a comma, to be parenthesized.
    pub(super) fn args_with_commas(&self, args: &[&Node]) -> Vec<Span> {
        let mut split = Vec::new();
        for arg in args {
            if !arg.in_main || arg.from_macro || arg.start >= arg.end {
                continue;
            }
            let first = self.tokens.partition_point(|t| t.start < arg.start);
            let mut depth = 0usize;
            for t in self.tokens[first..].iter().take_while(|t| t.end <= arg.end) {
                match t.text.as_str() {
                    "(" => depth += 1,
                    ")" => depth = depth.saturating_sub(1),
                    "," if depth == 0 => {
                        split.push((arg.start, arg.end));
                        break;
                    }
                    _ => {}
                }
            }
        }
        split
    }

    /// A struct key's padding holds whatever the stack held (designated initialisers and field stores
    /// leave it), so the same key would hash differently from call to call: zero it right before the
    /// method reads the key. Done for a key that is a variable (`key`, `&key`), with a comma expression
    /// around the argument, so the user's text stays as it is.
    fn zero_key_padding(&mut self, key: &Node, by_value: bool, by_address: bool) {
        let arg = strip(key);
        let var = if by_value {
            arg
        } else if by_address && arg.kind == CXCursor_UnaryOperator && arg.unary_by_type == "&" {
            match expr_children(arg).first() {
                Some(inner) => strip(inner),
                None => return,
            }
        } else {
            return;
        };
        if var.kind != CXCursor_DeclRefExpr || var.ty.holes.is_empty() || !key.in_main || key.from_macro {
            return;
        }
        let mut clears = String::from("(");
        for (offset, len) in &var.ty.holes {
            let _ = write!(clears, "__builtin_memset((char *)&{} + {offset}, 0, {len}), ", var.name);
        }
        self.insert(key.start, clears);
        self.insert(key.end, ")");
    }

    pub(super) fn record_event(&mut self, map: &str, ty: Option<&str>) {
        if let Some(ty) = ty {
            let named = !ty.contains('(') && ty != "void" && !ty.is_empty();
            if named {
                self.events.push((map.to_string(), ty.trim_start_matches("const ").to_string()));
            }
        }
    }
}
