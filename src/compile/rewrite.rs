//! The rewriter: bcc dialect (as parsed by libclang into `Node`s) → libbpf-style C.
#![allow(non_upper_case_globals)] // libclang constants keep their C names
//!
//! Every change is a text edit on the user's own source that keeps its line count, so clang's later
//! diagnostics point at the user's lines. What it changes:
//! - map declarations (`BPF_HASH(...)`) → BTF-defined maps in `SEC(".maps")`;
//! - map method calls (`counts.increment(k)`) → `__rbcc_m_increment(&counts, k)` (bpf/rbcc/helpers.h);
//! - probe functions get their `SEC(...)`; bcc-style kprobe arguments become `PT_REGS_PARMn` reads;
//! - reads of kernel memory through kernel pointers (`task->real_parent->tgid`) become probe reads.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use clang_sys::*;

use super::clang::{Node, Parsed, Token};
use super::decls::{map_definition, section_for};
use super::owntypes::USER_TAG_PREFIX;
use crate::error::{Error, Result};

mod kptr;
mod macros;
mod methods;
mod packet;
mod printk;
mod text;
use kptr::is_packet_context;
use text::{invocations, Invocation, Span};

/// The rewritten program, and what Python needs to know about it.
#[derive(Debug, Default)]
pub struct Rewritten {
    pub text: String,
    /// (map name, C type of the records a program sends through it), for perf and ring buffers.
    pub events: Vec<(String, String)>,
}

/// The macros of helpers.h that define a probe function with its ELF section.
const PROBE_MACROS: &[&str] = &[
    "TRACEPOINT_PROBE",
    "RAW_TRACEPOINT_PROBE",
    "KFUNC_PROBE",
    "KRETFUNC_PROBE",
    "MODULE_KFUNC_PROBE",
    "MODULE_KRETFUNC_PROBE",
    "KMOD_RET",
    "LSM_PROBE",
    "BPF_ITER",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    /// The expression's value is read.
    Read,
    /// Only the expression's address is used (operand of `&`, base of `.`, assigned to, ...).
    Place,
}

struct Edit {
    start: usize,
    end: usize,
    text: String,
}

pub fn rewrite(filename: &str, source: &str, parsed: &Parsed) -> Result<Rewritten> {
    let mut rw = Rewriter {
        filename,
        source,
        tokens: &parsed.tokens,
        invocations: invocations(&parsed.root, &parsed.tokens),
        wrapped: HashSet::new(),
        macro_methods: HashSet::new(),
        edits: Vec::new(),
        maps: BTreeMap::new(),
        events: Vec::new(),
        own_structs: parsed
            .root
            .iter()
            .filter(|n| n.kind == CXCursor_StructDecl && n.is_definition && !n.name.is_empty())
            // A kernel struct the program defines again (see owntypes.rs) stays the kernel's.
            .filter(|n| !n.name.starts_with(USER_TAG_PREFIX))
            .map(|n| n.name.clone())
            .collect(),
        packet_program: parsed.root.iter().any(|n| {
            let first = n.children.iter().find(|c| c.kind == CXCursor_ParmDecl);
            n.kind == CXCursor_FunctionDecl
                && first.and_then(|p| p.ty.pointee.as_deref()).is_some_and(|t| is_packet_context(&t.spelling))
        }),
    };
    for node in &parsed.root {
        if node.kind == CXCursor_VarDecl && is_map_decl(node) {
            rw.map_decl(node)?;
        }
    }
    rw.macro_methods = rw.macro_bodies(&parsed.root);
    for node in &parsed.root {
        if node.kind == CXCursor_FunctionDecl && node.is_definition {
            rw.function(node)?;
        }
    }
    for node in &parsed.root {
        if !is_map_decl(node) {
            rw.map_type_members(node);
        }
    }
    let mut text = apply(source, rw.edits);
    let mut events = Vec::new();
    let mut seen = HashSet::new();
    for (map, ty) in rw.events {
        if seen.insert(map.clone()) {
            // A function taking the record type puts that type into the object's BTF, where Python
            // finds it; libbpf leaves an uncalled function out of every program.
            let _ = write!(text, "\n__attribute__((used)) void __rbcc_event__{map}({ty} *__rbcc_p) {{}}");
            events.push((map, ty));
        }
    }
    if !source.contains("SEC(\"license\")") {
        // bcc programs name their license with `#define BPF_LICENSE X`, or none: then bcc loads them as
        // GPL, which tracing helpers require.
        text.push_str(
            "\n#ifdef BPF_LICENSE\n#define __RBCC_STR_(x) #x\n#define __RBCC_STR(x) __RBCC_STR_(x)\n\
             char _license[] SEC(\"license\") = __RBCC_STR(BPF_LICENSE);\n#else\n\
             char _license[] SEC(\"license\") = \"GPL\";\n#endif\n",
        );
    }
    text.push('\n');
    Ok(Rewritten { text, events })
}

/// Prefixes of the kernel's syscall functions: bcc's `sys_`, and those of the syscall wrappers that
/// take the user's registers (x86 since 4.17, arm64, s390, riscv).
const SYSCALL_PREFIXES: [&str; 5] = ["sys_", "__x64_sys_", "__arm64_sys_", "__s390x_sys_", "__riscv_sys_"];

/// A probe function whose arguments are a syscall's: `syscall__NAME` (attached by the program's
/// script), and `kprobe__sys_NAME`, which Python attaches to the syscall's wrapper as bcc does.
fn takes_syscall_args(name: &str) -> bool {
    name.starts_with("syscall__")
        || name.strip_prefix("kprobe__").is_some_and(|target| SYSCALL_PREFIXES.iter().any(|p| target.starts_with(p)))
}

fn is_map_decl(node: &Node) -> bool {
    node.annotation.as_deref().is_some_and(|a| a.starts_with("rbcc_map:"))
}

struct Rewriter<'a> {
    filename: &'a str,
    source: &'a str,
    tokens: &'a [Token],
    /// The macro invocations of the main file, by position.
    invocations: Vec<Invocation>,
    /// Texts already wrapped in a kernel read.
    wrapped: HashSet<Span>,
    edits: Vec<Edit>,
    /// Map variables by declaration identity.
    maps: BTreeMap<u32, String>,
    events: Vec<(String, String)>,
    /// Tags of the structs the program itself defines (anything else behind a pointer is the kernel's).
    own_structs: HashSet<String>,
    /// Map methods rewritten in the bodies of the program's macros (`macros.rs`).
    macro_methods: HashSet<String>,
    /// The program handles packets (XDP, socket, tc...): its `struct iphdr *` point into packet data,
    /// read directly, so only pointers from tracing contexts are taken for kernel pointers.
    packet_program: bool,
}

impl Rewriter<'_> {
    fn line_of(&self, offset: usize) -> usize {
        self.source[..offset.min(self.source.len())].matches('\n').count() + 1
    }

    fn error_at(&self, offset: usize, msg: &str) -> Error {
        let before = &self.source[..offset.min(self.source.len())];
        let column = before.len() - before.rfind('\n').map_or(0, |n| n + 1) + 1;
        Error::compile_at(self.filename, self.line_of(offset) as u32, Some(column as u32), msg)
    }

    fn insert(&mut self, at: usize, text: impl Into<String>) {
        self.edits.push(Edit { start: at, end: at, text: text.into() });
    }

    /// Replace [start, end) with `text`, keeping the replaced text's newlines so lines stay put.
    fn replace(&mut self, start: usize, end: usize, text: impl Into<String>) {
        let mut text = text.into();
        for _ in self.source[start..end].matches('\n') {
            text.push('\n');
        }
        self.edits.push(Edit { start, end, text });
    }

    fn token_at_or_after(&self, offset: usize) -> Option<&Token> {
        let i = self.tokens.partition_point(|t| t.start < offset);
        self.tokens.get(i)
    }

    /// End of the balanced `( ... )` that follows `start` (a macro name), or None.
    fn macro_call_end(&self, start: usize) -> Option<usize> {
        let i = self.tokens.partition_point(|t| t.start < start);
        let mut depth = 0i32;
        for t in &self.tokens[i..] {
            match t.text.as_str() {
                "(" => depth += 1,
                ")" => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(t.end);
                    }
                }
                _ => {}
            }
        }
        None
    }

    fn map_decl(&mut self, node: &Node) -> Result<()> {
        let kind = node.annotation.as_deref().unwrap_or("").trim_start_matches("rbcc_map:").to_string();
        let field = |name: &str| node.fields.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone());
        let (Some(key), Some(leaf), Some(size), Some(flags)) =
            (field("key"), field("leaf"), field("__max_entries"), field("__flags"))
        else {
            return Err(self.error_at(node.start, "malformed map declaration"));
        };
        let start = node.expansion_start.unwrap_or(node.start);
        let Some(end) = self.macro_call_end(start) else {
            return Err(self.error_at(start, "cannot find the end of this map declaration"));
        };
        let (key, leaf) = (self.type_text(&key), self.type_text(&leaf));
        let decl = map_definition(&kind, &key, &leaf, size.array_len.max(0), flags.array_len - 1)
            .map_err(|msg| self.error_at(start, &msg))?;
        let name = &node.name;
        let mut text = format!("{} {name} SEC(\".maps\")", decl.definition);
        // What the loader must do besides creating the map travels in the object (see src/shared_maps.rs).
        let records = [
            decl.pin.map(|p| format!("pin {name} {p}")),
            decl.export.then(|| format!("export {name}")),
            decl.external.then(|| format!("extern {name}")),
        ];
        for (i, r) in records.into_iter().flatten().enumerate() {
            let _ = write!(
                text,
                "; static const char __rbcc_map_{i}_{name}[] __attribute__((section(\".rbcc.maps\"), used)) = {r:?}"
            );
        }
        self.replace(start, end, text);
        self.maps.insert(node.decl, node.name.clone());
        Ok(())
    }

    /// A map key or leaf type as C text: its name, or for an untagged `struct { u64 a; }` (which
    /// libclang names by where it is) the definition itself, one line of its tokens (no comments).
    fn type_text(&self, ty: &super::clang::TypeInfo) -> String {
        let Some((start, end)) = ty.anonymous_at else {
            return ty.spelling.clone();
        };
        let first = self.tokens.partition_point(|t| t.start < start);
        let tokens = self.tokens[first..].iter().take_while(|t| t.end <= end);
        let code = tokens.filter(|t| !t.text.starts_with("//") && !t.text.starts_with("/*"));
        code.map(|t| t.text.as_str()).collect::<Vec<_>>().join(" ")
    }

    /// `typeof(counts.leaf)`, `sizeof(counts.key)`: a bcc map's key and leaf members, which the
    /// libbpf map has as pointers (`key`, `value`), wherever they are named.
    fn map_type_members(&mut self, n: &Node) {
        if n.kind == CXCursor_MemberRefExpr && matches!(n.name.as_str(), "leaf" | "key") && n.in_main {
            let base = expr_children(n).first().map(|b| strip(b));
            let map = base.filter(|b| b.kind == CXCursor_DeclRefExpr).and_then(|b| self.maps.get(&b.referenced));
            if let Some(map) = map.cloned() {
                if self.own_text(n, None) && self.wrapped.insert((n.start, n.end)) {
                    let member = if n.name == "leaf" { "value" } else { "key" };
                    self.replace(n.start, n.end, format!("(*{map}.{member})"));
                }
                return;
            }
        }
        for c in &n.children {
            self.map_type_members(c);
        }
    }

    fn function(&mut self, f: &Node) -> Result<()> {
        let params: Vec<&Node> = f.children.iter().filter(|c| c.kind == CXCursor_ParmDecl).collect();
        let Some(body) = f.children.iter().find(|c| c.kind == CXCursor_CompoundStmt) else {
            return Ok(());
        };
        let name = f.name.as_str();
        let ctx_type = params.first().and_then(|p| p.ty.pointee.as_ref()).map(|t| t.spelling.as_str());
        let mut fx = FnCtx {
            ext: HashSet::new(),
            ctx: params.first().map(|p| p.decl).unwrap_or(0),
            raw_tp: name.starts_with("raw_tracepoint__")
                || ctx_type.is_some_and(|t| t.contains("bpf_raw_tracepoint_args")),
            // A tracepoint's fields are raw kernel addresses, except a syscall's (user memory).
            tp_args: ctx_type.is_some_and(|t| {
                t.starts_with("struct tracepoint__") && !t.starts_with("struct tracepoint__syscalls__")
            }),
            skb: ctx_type
                .filter(|t| t.trim_start_matches("const ").trim() == "struct __sk_buff")
                .map(|_| params[0].name.clone())
                .filter(|n| !n.is_empty()),
        };
        // helpers.h's probe macros (KFUNC_PROBE, BPF_ITER, ...) give their functions a section themselves.
        let probe_macro = self.token_at_or_after(f.start).is_some_and(|t| PROBE_MACROS.contains(&t.text.as_str()));
        // A section the user wrote (libbpf style, `SEC("sk_msg") int f(...)`) is theirs to keep.
        let head = &self.source[f.start.min(body.start)..body.start];
        let own_section = head.contains("SEC(") || head.contains("section(");
        if !f.is_static && !f.from_macro && f.in_main && !probe_macro && !own_section {
            // Every function with external linkage is a program, as in bcc (`int do_perf_event()` too).
            let section = section_for(name, ctx_type.unwrap_or(""));
            self.insert(f.start, format!("SEC(\"{section}\") "));
        }
        if f.is_static && !f.from_macro && f.in_main {
            self.static_helper(f, &params, body, &mut fx);
        }
        let regs_ctx = ctx_type.is_some_and(|t| t.ends_with("pt_regs"));
        if !f.is_static && regs_ctx && params.len() > 1 {
            self.kprobe_params(f, &params, body, takes_syscall_args(name))?;
            fx.ext.extend(params[1..].iter().map(|p| p.decl));
        }
        // Which variables hold kernel pointers: iterate to a fixpoint over initialisations and assignments.
        loop {
            let before = fx.ext.len();
            self.mark_ext_vars(body, &mut fx);
            if fx.ext.len() == before {
                break;
            }
        }
        self.walk(body, Role::Read, &fx, (body.start, body.end))
    }

    /// A static function is a helper of the programs: inlined into them like bcc does (BPF cannot pass
    /// structs by value to a real call), and its pointers to kernel structs (a type the program does
    /// not define itself, nor a probe context) are kernel pointers, read with probe reads.
    fn static_helper(&mut self, f: &Node, params: &[&Node], body: &Node, fx: &mut FnCtx) {
        let head = &self.source[f.start..body.start];
        if !head.contains("noinline") && !head.contains("always_inline") {
            self.insert(f.start, "__attribute__((always_inline)) ".to_string());
        }
        fx.ctx = 0;
        fx.raw_tp = false;
        fx.tp_args = false;
        for p in params {
            if p.ty.pointee.as_deref().is_some_and(|t| self.is_kernel_struct(&t.spelling)) {
                fx.ext.insert(p.decl);
            }
        }
    }

    /// `int kprobe__f(struct pt_regs *ctx, struct sock *sk)` → `(struct pt_regs *ctx)` and a local
    /// `struct sock *sk = (typeof(sk))PT_REGS_PARM1(ctx);` at the top of the body.
    fn kprobe_params(&mut self, f: &Node, params: &[&Node], body: &Node, syscall: bool) -> Result<()> {
        let (first, last) = (params[0], params[params.len() - 1]);
        if !(first.in_main && last.in_main && body.in_main) {
            return Ok(());
        }
        if params.len() > 7 {
            return Err(self.error_at(f.start, "a probe function takes at most 6 arguments after ctx"));
        }
        let ctx = &first.name;
        self.replace(first.end, last.end, "");
        let mut decls = String::new();
        let regs = if syscall {
            // Syscall entry points get the user's registers as their one argument.
            let _ = write!(decls, " struct pt_regs *__rbcc_regs = (struct pt_regs *)PT_REGS_PARM1({ctx});");
            "__rbcc_regs".to_string()
        } else {
            ctx.clone()
        };
        for (i, p) in params[1..].iter().enumerate() {
            let decl = &self.source[p.start..p.end];
            let read = if syscall {
                format!("PT_REGS_PARM{}_CORE_SYSCALL({regs})", i + 1)
            } else {
                format!("PT_REGS_PARM{}({regs})", i + 1)
            };
            let _ = write!(decls, " {decl} = (typeof({}))({read});", p.name);
        }
        self.insert(body.start + 1, decls.replace('\n', " "));
        Ok(())
    }

    /// Whether `n` comes from a macro that reads kernel memory itself (`BPF_CORE_READ(task, nsproxy)`),
    /// whose member accesses are spelled across its arguments and must be left alone.
    fn inside_reading_macro(&self, n: &Node) -> bool {
        // libclang gives such an access the macro call's start: the token there is the macro's name.
        // Called inside another macro's argument (`bpf_ntohs(BPF_CORE_READ(sk, ...))`), the outer call
        // starts the expansion, and the reading macro's name starts the access's own text.
        let reading = |at: usize| {
            let name = self.token_at_or_after(at).map(|t| t.text.as_str()).unwrap_or("");
            ["BPF_CORE_READ", "bpf_core_read", "BPF_PROBE_READ", "bpf_probe_read"].iter().any(|p| name.starts_with(p))
        };
        n.expansion_start.is_some_and(|at| reading(at) || reading(n.start))
    }

    fn wrap_if_kernel_read(&mut self, n: &Node, role: Role, fx: &FnCtx, parent: Span) {
        let wrappable = self.own_text(n, Some(parent)) && !self.inside_reading_macro(n);
        // A macro that uses its argument twice (`ntohs(x)`) gives one text several nodes: wrap it once.
        if role == Role::Read
            && wrappable
            && !n.ty.is_array()
            && self.lives_ext(n, fx)
            && self.wrapped.insert((n.start, n.end))
        {
            self.insert(n.start, "__rbcc_kread(");
            self.insert(n.end, ")");
        }
    }

    /// Rewrite what `n` holds; `parent` is the text of the nearest enclosing node that is not an
    /// implicit conversion (which shares its operand's text) nor parentheses (wrapping `(x)` reads x).
    fn walk(&mut self, n: &Node, role: Role, fx: &FnCtx, parent: Span) -> Result<()> {
        let ops = expr_children(n);
        let transparent = matches!(n.kind, CXCursor_UnexposedExpr | CXCursor_ParenExpr);
        let here = if transparent { parent } else { (n.start, n.end) };
        match n.kind {
            // sizeof/alignof: nothing under them is evaluated.
            CXCursor_UnaryExpr => Ok(()),
            CXCursor_CallExpr => {
                if let Some((map, method, callee)) = self.map_call(n) {
                    self.method_call(n, &map, &method, callee, &ops[1..])?;
                    // Around the edits inside the arguments, so the parentheses enclose them.
                    let split = self.args_with_commas(&ops[1..]);
                    for &(start, _) in &split {
                        self.insert(start, "(");
                    }
                    self.walk_all(&ops[1..], Role::Read, fx, here)?;
                    for &(_, end) in &split {
                        self.insert(end, ")");
                    }
                    Ok(())
                } else {
                    self.checksum_call(n, fx)?;
                    self.check_printk(n)?;
                    self.walk_all(&ops, Role::Read, fx, here)
                }
            }
            CXCursor_VarDecl => {
                if let Some(init) = ops.last() {
                    if let Some((map, method, _)) = self.map_call(strip_casts(init)) {
                        if method == "ringbuf_reserve" {
                            self.record_event(&map, n.ty.pointee.as_deref().map(|t| t.spelling.as_str()));
                        }
                    }
                }
                self.walk_all(&ops, Role::Read, fx, here)
            }
            CXCursor_MemberRefExpr => {
                if role == Role::Read && self.packet_read(n, fx, parent)? {
                    return Ok(());
                }
                self.wrap_if_kernel_read(n, role, fx, parent);
                match ops.first() {
                    Some(base) if strip(base).ty.is_pointer() => self.walk(base, Role::Read, fx, here),
                    Some(base) => self.walk(base, Role::Place, fx, here),
                    None => Ok(()),
                }
            }
            CXCursor_ArraySubscriptExpr => {
                self.wrap_if_kernel_read(n, role, fx, parent);
                if let Some(base) = ops.first() {
                    let base_role = if strip(base).ty.is_array() { Role::Place } else { Role::Read };
                    self.walk(base, base_role, fx, here)?;
                }
                self.walk_all(ops.get(1..).unwrap_or(&[]), Role::Read, fx, here)
            }
            CXCursor_UnaryOperator => {
                let op = self.unary_op(n).to_string();
                self.packet_step(n, &op)?;
                if op == "*" {
                    self.wrap_if_kernel_read(n, role, fx, parent);
                }
                let inner = if matches!(op.as_str(), "&" | "++" | "--") { Role::Place } else { Role::Read };
                self.walk_all(&ops, inner, fx, here)
            }
            CXCursor_BinaryOperator | CXCursor_CompoundAssignOperator => {
                let assigns = n.kind == CXCursor_CompoundAssignOperator || self.binary_op(n) == "=";
                if let [lhs, rhs] = ops.as_slice() {
                    if assigns && self.packet_write(n, strip(lhs), fx)? {
                        return self.walk(rhs, Role::Read, fx, here);
                    }
                    self.walk(lhs, if assigns { Role::Place } else { Role::Read }, fx, here)?;
                    self.walk(rhs, Role::Read, fx, here)
                } else {
                    self.walk_all(&ops, Role::Read, fx, here)
                }
            }
            CXCursor_UnexposedExpr | CXCursor_ParenExpr => self.walk_all(&ops, role, fx, here),
            _ => {
                for c in &n.children {
                    self.walk(c, Role::Read, fx, here)?;
                }
                Ok(())
            }
        }
    }

    fn walk_all(&mut self, nodes: &[&Node], role: Role, fx: &FnCtx, parent: Span) -> Result<()> {
        for n in nodes {
            self.walk(n, role, fx, parent)?;
        }
        Ok(())
    }
}

struct FnCtx {
    /// Declarations (variables, parameters) that hold kernel pointers.
    ext: HashSet<u32>,
    /// The context parameter.
    ctx: u32,
    raw_tp: bool,
    /// The context is a tracepoint's record, whose pointer fields hold kernel addresses to read through.
    tp_args: bool,
    /// The name of the `struct __sk_buff *` context, through which packet header fields are read.
    skb: Option<String>,
}

fn is_expr(kind: CXCursorKind) -> bool {
    (100..200).contains(&kind)
}

fn expr_children(n: &Node) -> Vec<&Node> {
    n.children.iter().filter(|c| is_expr(c.kind)).collect()
}

/// Look through implicit conversions and parentheses.
fn strip(n: &Node) -> &Node {
    let mut n = n;
    while matches!(n.kind, CXCursor_UnexposedExpr | CXCursor_ParenExpr) {
        let ops = expr_children(n);
        if ops.len() != 1 {
            break;
        }
        n = ops[0];
    }
    n
}

/// Look through explicit casts too.
fn strip_casts(n: &Node) -> &Node {
    let mut n = strip(n);
    while n.kind == CXCursor_CStyleCastExpr {
        match expr_children(n).last() {
            Some(inner) => n = strip(inner),
            None => break,
        }
    }
    n
}

/// Apply edits to `source`: sorted by position, insertions at one offset kept in the order made.
fn apply(source: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| e.start);
    let mut out = String::with_capacity(source.len() + 64 * edits.len());
    let mut at = 0;
    for e in edits {
        if e.start < at {
            continue; // overlaps an earlier replacement: the earlier one wins
        }
        out.push_str(&source[at..e.start]);
        out.push_str(&e.text);
        at = e.end;
    }
    out.push_str(&source[at..]);
    out
}
