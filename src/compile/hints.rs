//! Hints a CompileError adds under clang's diagnostics when the cause is the kernel, not the program.
//!
//! bcc compiles against kernel headers, which define every struct of the kernel's source; rbcc
//! compiles against the kernel's BTF, which holds only what this kernel was built with. A tool for a
//! subsystem that is not built in (nfsslower on a kernel without NFS) then meets an incomplete
//! `struct nfs_commit_data`, and clang alone does not say why.

use crate::kernel::btf::{self, RecordHome};

/// The (union?, tag) of each struct or union clang calls incomplete in `diagnostics`
/// (`incomplete definition of type 'struct X'`, `variable has incomplete type 'struct X'`, ...),
/// once each, in order.
fn incomplete_records(diagnostics: &str) -> Vec<(bool, String)> {
    let mut out: Vec<(bool, String)> = Vec::new();
    for line in diagnostics.lines().filter(|l| l.contains(" error: ")) {
        for (at, _) in line.match_indices("incomplete ") {
            let rest = &line[at + "incomplete ".len()..];
            let Some(quoted) = rest.strip_prefix("definition of type '").or_else(|| rest.strip_prefix("type '")) else {
                continue;
            };
            let Some(ty) = quoted.split('\'').next() else { continue };
            let record = match ty.split_once(' ') {
                Some(("struct", tag)) => (false, tag),
                Some(("union", tag)) => (true, tag),
                _ => continue,
            };
            let tag_ok = !record.1.is_empty() && record.1.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if tag_ok && !out.iter().any(|(u, t)| (*u, t.as_str()) == record) {
                out.push((record.0, record.1.to_string()));
            }
        }
    }
    out
}

/// The packet headers of bcc's own <bcc/proto.h>, read through bcc's packet-access rewriting; not kernel
/// structs, so where the kernel defines them is the wrong question.
const BCC_PROTO: [&str; 12] = [
    "ethernet_t",
    "dot1q_t",
    "arp_t",
    "ip_t",
    "icmp_t",
    "ip6_t",
    "ip6_opt_t",
    "icmp6_t",
    "udp_t",
    "tcp_t",
    "vxlan_t",
    "vxlan_gbp_t",
];

fn hint_for(union: bool, tag: &str, home: RecordHome) -> Option<String> {
    let what = format!("{} {tag}", if union { "union" } else { "struct" });
    if !union && BCC_PROTO.contains(&tag) {
        return Some(format!("hint: {what} is a packet header of bcc's <bcc/proto.h>, which rbcc does not provide"));
    }
    match home {
        RecordHome::Vmlinux => None,
        RecordHome::Module(module) => Some(format!(
            "hint: {what} is defined by the kernel module {module}, whose types rbcc does not take in: \
             define {what} in the program with the fields it uses (CO-RE finds them in the module)"
        )),
        RecordHome::Nowhere => Some(format!(
            "hint: {what} is not defined in this kernel's BTF (the code that defines it is not built in, \
             or its module is not loaded)"
        )),
    }
}

/// `diagnostics` with a hint line for each struct or union it finds incomplete that the running
/// kernel does not define where rbcc looks.
pub fn explain(diagnostics: String) -> String {
    let records = incomplete_records(&diagnostics);
    let atomics = atomic_result_hint(&diagnostics, crate::kernel::version::linux_version_code());
    let mut out = diagnostics;
    for (union, tag) in records {
        if let Some(hint) = btf::record_home(&tag, union).ok().and_then(|home| hint_for(union, &tag, home)) {
            out.push('\n');
            out.push_str(&hint);
        }
    }
    if let Some(hint) = atomics {
        out.push('\n');
        out.push_str(&hint);
    }
    out
}

/// The value an atomic operation returns (`old = __sync_fetch_and_add(&v->count, 1)` on a 32-bit field,
/// `__sync_fetch_and_or`, ...) exists only in BPF's v3 instruction set, which programs are not compiled
/// for unless asked: LLVM's backend then stops with a message about its own instructions.
fn atomic_result_hint(diagnostics: &str, kernel: u32) -> Option<String> {
    const BACKEND: [&str; 2] = ["Invalid usage of the XADD return value", "Cannot select: "];
    let atomic =
        diagnostics.contains(BACKEND[0]) || (diagnostics.contains(BACKEND[1]) && diagnostics.contains("Atomic"));
    if !atomic {
        return None;
    }
    let can = kernel >= (5 << 16) + (12 << 8);
    Some(if can {
        "hint: the program uses the value an atomic operation returns, which needs BPF's v3 instructions: \
         pass cflags=[\"-mcpu=v3\"] (this kernel runs them)"
            .to_string()
    } else {
        "hint: the program uses the value an atomic operation returns, which needs BPF's v3 instructions and \
         Linux 5.12 or later; this kernel is older: use the operation without its result (__sync_fetch_and_add \
         as a statement), or a map update"
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_result_gets_the_v3_hint_where_the_kernel_runs_it() {
        let add = "fatal error: error in backend: line 9: Invalid usage of the XADD return value";
        let or =
            "fatal error: error in backend: Cannot select: 0x5a: i32,ch = AtomicLoadOr<(load store seq_cst (s32))>";
        let v5_15 = (5 << 16) + (15 << 8);
        for diags in [add, or] {
            assert!(atomic_result_hint(diags, v5_15).unwrap().contains("cflags=[\"-mcpu=v3\"]"), "{diags}");
            assert!(atomic_result_hint(diags, (5 << 16) + (4 << 8)).unwrap().contains("Linux 5.12 or later"));
        }
        assert_eq!(atomic_result_hint("p.c:3:1: error: Cannot select: a road", v5_15), None);
        assert_eq!(atomic_result_hint("p.c:3:1: error: unknown type name 'x'", v5_15), None);
    }

    #[test]
    fn finds_the_records_clang_calls_incomplete() {
        let diags = "<bpf text>:186:47: error: incomplete definition of type 'struct nfs_commit_data'\n    \
                     u64 x = cd->fattr.size;\n\
                     <bpf text>:187:12: error: incomplete definition of type 'struct nfs_commit_data'\n\
                     p.c:3:14: error: variable has incomplete type 'union blob'\n\
                     p.c:4:9: error: invalid application of 'sizeof' to an incomplete type 'struct a_b2'\n\
                     p.c:5:1: error: incomplete definition of type 'int'\n\
                     p.c:6:1: warning: declaration of 'struct quiet' will not be visible\n";
        assert_eq!(
            incomplete_records(diags),
            vec![(false, "nfs_commit_data".into()), (true, "blob".into()), (false, "a_b2".into())]
        );
    }

    #[test]
    fn hints_say_where_the_definition_is_missing() {
        assert_eq!(hint_for(false, "task_struct", RecordHome::Vmlinux), None);
        assert_eq!(
            hint_for(false, "nfs_commit_data", RecordHome::Nowhere).unwrap(),
            "hint: struct nfs_commit_data is not defined in this kernel's BTF (the code that defines it is \
             not built in, or its module is not loaded)"
        );
        let module = hint_for(true, "u", RecordHome::Module("nfs".into())).unwrap();
        assert!(module.contains("union u is defined by the kernel module nfs"), "{module}");
        let proto = hint_for(false, "ethernet_t", RecordHome::Nowhere).unwrap();
        assert!(proto.contains("bcc's <bcc/proto.h>"), "{proto}");
    }

    #[test]
    fn explain_adds_one_hint_per_absent_record() {
        if !std::path::Path::new(btf::VMLINUX_BTF).exists() {
            eprintln!("skipped: no kernel BTF at {}", btf::VMLINUX_BTF);
            return;
        }
        let diags = "p.c:1:1: error: incomplete definition of type 'struct rbcc_no_such_struct'\n\
                     p.c:2:1: error: incomplete definition of type 'struct rbcc_no_such_struct'\n\
                     p.c:3:1: error: incomplete definition of type 'struct task_struct'";
        let out = explain(diags.to_string());
        assert!(out.starts_with(diags), "{out}");
        assert_eq!(out.matches("hint: ").count(), 1, "{out}");
        assert!(out.ends_with("hint: struct rbcc_no_such_struct is not defined in this kernel's BTF (the code that defines it is not built in, or its module is not loaded)"), "{out}");
    }
}
