//! Which expressions of a probe reach kernel memory through a kernel pointer (`task->real_parent->tgid`,
//! a kprobe's `struct sock *sk`, `(struct sock *)args->skaddr`, a `struct sock *` kept in a map value), so
//! the rewriter reads them with probe reads. Packet programs (XDP, socket, tc) read their packet pointers directly and are left alone.

use clang_sys::*;

use super::{expr_children, strip, FnCtx, Rewriter};
use crate::compile::clang::{Node, TypeInfo};

/// The contexts of programs that see packets.
pub(super) fn is_packet_context(spelling: &str) -> bool {
    let ty = spelling.trim_start_matches("const ").trim();
    ["__sk_buff", "xdp_md", "sk_msg_md", "bpf_sock_ops", "bpf_sock_addr", "sk_reuseport_md"]
        .iter()
        .any(|c| ty == format!("struct {c}"))
}

/// The context types probes receive: never a kernel pointer to read through.
fn is_context_type(ty: &str) -> bool {
    ty.starts_with("struct tracepoint__")
        || [
            "pt_regs",
            "bpf_perf_event_data",
            "bpf_raw_tracepoint_args",
            "__sk_buff",
            "xdp_md",
            "bpf_sock_ops",
            "bpf_sock_addr",
            "sk_msg_md",
            "bpf_sockopt",
            "bpf_sysctl",
            "sk_reuseport_md",
        ]
        .iter()
        .any(|c| ty == format!("struct {c}"))
}

impl Rewriter<'_> {
    /// A struct type the program does not define itself and that is not a probe context: the kernel's.
    pub(super) fn is_kernel_struct(&self, spelling: &str) -> bool {
        if self.packet_program {
            return false;
        }
        let ty = spelling.trim_start_matches("const ").trim();
        ty.strip_prefix("struct ").is_some_and(|tag| !self.own_structs.contains(tag.trim()) && !is_context_type(ty))
    }

    /// `struct sock *`, not `struct sock **` (which points at a pointer, wherever that is).
    fn is_kernel_struct_ptr(&self, ty: &TypeInfo) -> bool {
        ty.pointee.as_deref().is_some_and(|t| !t.spelling.contains('*') && self.is_kernel_struct(&t.spelling))
    }

    pub(super) fn mark_ext_vars(&self, n: &Node, fx: &mut FnCtx) {
        match n.kind {
            CXCursor_VarDecl => {
                if let Some(init) = expr_children(n).last() {
                    if self.ext_ptr(init, fx) {
                        fx.ext.insert(n.decl);
                    }
                }
            }
            CXCursor_BinaryOperator if self.binary_op(n) == "=" => {
                let ops = expr_children(n);
                if ops.len() == 2 {
                    let lhs = strip(ops[0]);
                    if lhs.kind == CXCursor_DeclRefExpr && self.ext_ptr(ops[1], fx) {
                        fx.ext.insert(lhs.referenced);
                    }
                }
            }
            _ => {}
        }
        for c in &n.children {
            self.mark_ext_vars(c, fx);
        }
    }

    /// Does this pointer-valued expression point into kernel memory?
    fn ext_ptr(&self, n: &Node, fx: &FnCtx) -> bool {
        let converted = n;
        let n = strip(n);
        if self.raw_tp_arg(n, fx) || self.loaded_kernel_ptr(converted, n, fx) {
            return true;
        }
        match n.kind {
            // `(struct sock *)args->skaddr`, `(struct sock *)PT_REGS_PARM1(ctx)`: a kernel struct's
            // address, whatever the value came from
            CXCursor_CStyleCastExpr => {
                n.ty.pointee.as_deref().is_some_and(|t| self.is_kernel_struct(&t.spelling))
                    || expr_children(n).last().is_some_and(|e| self.ext_ptr(e, fx))
            }
            CXCursor_DeclRefExpr => fx.ext.contains(&n.referenced),
            // A function that returns a kernel struct's address (the kernel's inline casts rbcc's
            // headers give, `tcp_sk(sk)`, or a helper of the program's own) hands out a kernel pointer,
            // as the cast inside it would.
            CXCursor_CallExpr => {
                self.is_kernel_struct_ptr(&n.ty)
                    || expr_children(n).first().is_some_and(|callee| {
                        let callee = strip(callee);
                        callee.name == "bpf_get_current_task" || callee.name == "bpf_get_current_task_btf"
                    })
            }
            CXCursor_MemberRefExpr | CXCursor_ArraySubscriptExpr => self.lives_ext(n, fx),
            CXCursor_UnaryOperator => match self.unary_op(n) {
                "*" => self.lives_ext(n, fx),
                "&" => expr_children(n).first().is_some_and(|e| self.lives_ext(e, fx)),
                _ => false,
            },
            CXCursor_BinaryOperator if matches!(self.binary_op(n), "+" | "-") => {
                expr_children(n).iter().any(|e| self.ext_ptr(e, fx))
            }
            _ => false,
        }
    }

    /// A pointer to a kernel struct read from memory the program owns, a map value (`*skpp` of a
    /// `BPF_HASH(m, u32, struct sock *)`), its stack, a tracepoint's record (`struct sk_buff *skb =
    /// args->skbaddr`), points into the kernel as much as one read from kernel memory does: bcc follows
    /// such pointers through maps too. `converted` is `n` with its implicit conversion, which carries
    /// the type a `void *` field is given. A BTF-typed context (an iterator's, fentry's) holds trusted
    /// pointers that programs use directly, so what is read straight from it is left alone.
    fn loaded_kernel_ptr(&self, converted: &Node, n: &Node, fx: &FnCtx) -> bool {
        let load = match n.kind {
            CXCursor_MemberRefExpr | CXCursor_ArraySubscriptExpr => true,
            CXCursor_UnaryOperator => self.unary_op(n) == "*",
            _ => false,
        };
        let kernel_typed = |t: &TypeInfo| t.pointee.as_deref().is_some_and(|p| self.is_kernel_struct(&p.spelling));
        load && (kernel_typed(&converted.ty) || kernel_typed(&n.ty)) && (fx.tp_args || !self.reads_context(n, fx))
    }

    /// `ctx->field`, `ctx[i]`: a read of the probe's context itself.
    fn reads_context(&self, n: &Node, fx: &FnCtx) -> bool {
        fx.ctx != 0
            && expr_children(n).first().is_some_and(|b| {
                let b = strip(b);
                b.kind == CXCursor_DeclRefExpr && b.referenced == fx.ctx
            })
    }

    /// `ctx->args[i]` in a raw tracepoint: a kernel pointer passed as an integer.
    fn raw_tp_arg(&self, n: &Node, fx: &FnCtx) -> bool {
        if !fx.raw_tp || n.kind != CXCursor_ArraySubscriptExpr {
            return false;
        }
        let Some(base) = expr_children(n).first().map(|b| strip(b)) else {
            return false;
        };
        base.kind == CXCursor_MemberRefExpr
            && base.name == "args"
            && expr_children(base).first().is_some_and(|b| {
                let b = strip(b);
                b.kind == CXCursor_DeclRefExpr && b.referenced == fx.ctx
            })
    }

    /// Is this lvalue in kernel memory (reached through a kernel pointer)?
    pub(super) fn lives_ext(&self, n: &Node, fx: &FnCtx) -> bool {
        let n = strip(n);
        match n.kind {
            CXCursor_MemberRefExpr => match expr_children(n).first() {
                Some(base) if strip(base).ty.is_pointer() => self.ext_ptr(base, fx),
                Some(base) => self.lives_ext(base, fx),
                None => false,
            },
            CXCursor_ArraySubscriptExpr => match expr_children(n).first() {
                Some(base) if strip(base).ty.is_array() => self.lives_ext(strip(base), fx),
                Some(base) => self.ext_ptr(base, fx),
                None => false,
            },
            CXCursor_UnaryOperator if self.unary_op(n) == "*" => {
                expr_children(n).first().is_some_and(|e| self.ext_ptr(e, fx))
            }
            _ => false,
        }
    }
}
