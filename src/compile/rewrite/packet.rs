//! Fields of packet header structs (bcc's proto.h: `struct ip_t`, `struct udp_t`, ... marked
//! `deprecated("packet")`). Their bit-fields are declared in network bit order, so no C compiler reads
//! them right; as in bcc, every read of such a field becomes a load of its bits in network order, and
//! every assignment a store.
//!
//! Where the pointer comes from decides how: in a function whose context is a `struct __sk_buff *` the
//! pointer is bcc's cursor, an offset into the packet (`u8 *cursor = 0`), read through the skb
//! (`bpf_dext_pkt(skb, off, ...)`, `bpf_dins_pkt`); anywhere else (XDP, a copy on the stack) it is a real
//! pointer, read directly (`__rbcc_pkt_load`, `__rbcc_pkt_store`, which bcc lacks).

use clang_sys::*;

use super::{expr_children, strip, FnCtx, Rewriter};
use crate::compile::clang::Node;
use crate::error::Result;

impl Rewriter<'_> {
    /// Where the field `n` (a member access with `packet_field`) lives, as the arguments that come
    /// before the bit offset and width: `skb, (__u64)(p) + byte` or `(void *)(p), byte`. None when the
    /// access cannot be rewritten.
    fn packet_place(&self, n: &Node, fx: &FnCtx) -> Option<String> {
        let (offset, _) = n.packet_field?;
        let base = strip(expr_children(n).first()?);
        if !base.in_main || !self.own_text(base, None) {
            return None;
        }
        let text = &self.source[base.start..base.end];
        let pointer = base.ty.is_pointer();
        let byte = offset / 8;
        match (&fx.skb, pointer) {
            (Some(skb), true) => Some(format!("{skb}, (__u64)({text}) + {byte}")),
            // a packet struct held by value in a socket program is a copy: not bcc's cursor
            (Some(_), false) => None,
            (None, true) => Some(format!("(void *)({text}), {byte}")),
            (None, false) => Some(format!("(void *)&({text}), {byte}")),
        }
    }

    /// A read of a packet header field: its bits in network order, as a number.
    pub(super) fn packet_read(&mut self, n: &Node, fx: &FnCtx, parent: (usize, usize)) -> Result<bool> {
        let Some((offset, width)) = n.packet_field else {
            return Ok(false);
        };
        if !n.in_main {
            return Ok(false);
        }
        if !self.own_text(n, Some(parent)) {
            if parent == (n.start, n.end) {
                return Ok(false); // the same text as its parent, a macro's use of one argument
            }
            let msg = format!("{}: a packet header field cannot be read inside a macro's own text", n.name);
            return Err(self.error_at(n.start, &msg));
        }
        let Some(place) = self.packet_place(n, fx) else {
            return Ok(false);
        };
        // a macro that uses its argument twice (`ntohs(ip->tlen)`) gives one text several nodes
        if !self.wrapped.insert((n.start, n.end)) {
            return Ok(true);
        }
        let load = if fx.skb.is_some() { "bpf_dext_pkt" } else { "__rbcc_pkt_load" };
        self.replace(n.start, n.end, format!("{load}({place}, {}, {width})", offset % 8));
        Ok(true)
    }

    /// `p->field = v` (or `op=`) on a packet header field: a store of v's bits in network order.
    /// `assign` is the assignment, `lhs` its left side.
    pub(super) fn packet_write(&mut self, assign: &Node, lhs: &Node, fx: &FnCtx) -> Result<bool> {
        let Some((offset, width)) = lhs.packet_field else {
            return Ok(false);
        };
        if !assign.in_main || !lhs.in_main {
            return Ok(false);
        }
        let op = self.binary_op(assign).to_string();
        let Some(op_end) = self.token_at_or_after(lhs.end).filter(|t| t.text == op).map(|t| t.end) else {
            let msg = format!("{}: a packet header field cannot be written inside a macro's own text", lhs.name);
            return Err(self.error_at(assign.start, &msg));
        };
        let Some(place) = self.packet_place(lhs, fx) else {
            return Ok(false);
        };
        let bits = format!("{}, {width}", offset % 8);
        let (store, load) =
            if fx.skb.is_some() { ("bpf_dins_pkt", "bpf_dext_pkt") } else { ("__rbcc_pkt_store", "__rbcc_pkt_load") };
        let (head, tail) = match op.strip_suffix('=') {
            Some("") => (format!("{store}({place}, {bits}, "), ")"),
            Some(arith) if !arith.is_empty() => {
                (format!("{store}({place}, {bits}, {load}({place}, {bits}) {arith} ("), "))")
            }
            _ => return Ok(false),
        };
        let op_end = op_end + self.source[op_end..].len() - self.source[op_end..].trim_start_matches([' ', '\t']).len();
        self.replace(assign.start, op_end, head);
        self.insert(assign.end, tail);
        Ok(true)
    }

    /// `++p->field` and the like: refused, since the field is not in memory as C sees it.
    pub(super) fn packet_step(&self, n: &Node, op: &str) -> Result<()> {
        let operand = expr_children(n).first().map(|o| strip(o));
        match operand {
            Some(o) if o.kind == CXCursor_MemberRefExpr && o.packet_field.is_some() && matches!(op, "++" | "--") => {
                let msg = format!(
                    "{op} on the packet header field {}: write it as an assignment (`p->{0} = p->{0} + 1`)",
                    o.name
                );
                Err(self.error_at(n.start, &msg))
            }
            _ => Ok(()),
        }
    }
}

impl Rewriter<'_> {
    /// `incr_cksum_l3(&ip->hchecksum, old, new)`: bcc passes the program's skb to these itself.
    pub(super) fn checksum_call(&mut self, call: &Node, fx: &FnCtx) -> Result<()> {
        let Some(callee) = expr_children(call).first().map(|c| strip(c)) else {
            return Ok(());
        };
        let name = callee.name.as_str();
        if callee.kind != CXCursor_DeclRefExpr || !matches!(name, "incr_cksum_l3" | "incr_cksum_l4") || !callee.in_main
        {
            return Ok(());
        }
        let Some(skb) = fx.skb.clone() else {
            let msg = format!("{name}() updates the checksum in the packet of a struct __sk_buff * context, which this function does not take first");
            return Err(self.error_at(call.start, &msg));
        };
        let lparen = self.token_at_or_after(callee.end).filter(|t| t.text == "(").map(|t| t.end);
        match lparen {
            Some(end) if self.own_text(callee, None) => {
                self.replace(callee.start, end, format!("__rbcc_{name}({skb}, "));
                Ok(())
            }
            _ => Err(self.error_at(call.start, &format!("{name}() cannot be called inside a macro's own text"))),
        }
    }
}
