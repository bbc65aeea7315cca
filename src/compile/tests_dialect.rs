//! Rewriter tests of the C dialect's smaller constructs: bcc's packet header structs (proto.h), map
//! values of untagged struct types, bpf_trace_printk's format checks.

use super::rewrite_only;
use super::tests::{available, rewrite, squash};

#[test]
fn packet_header_fields_are_read_and_written_in_network_order() {
    if !available() {
        return;
    }
    let out = squash(&rewrite(
        "#include <bcc/proto.h>\nint f(struct __sk_buff *skb) {\n u8 *cursor = 0;\n\
         struct ethernet_t *e = cursor_advance(cursor, sizeof(*e));\n struct ip_t *ip = cursor_advance(cursor, sizeof(*ip));\n\
         u64 t = e->type; u32 h = ip->hlen << 2; ip->ttl = 9; ip->foffset += 2; u16 *c = &ip->hchecksum;\n\
         incr_cksum_l3(&ip->hchecksum, 1, 2);\n return 0;\n}\n\
         int g(struct xdp_md *ctx) {\n struct udp_t *udp = (void *)(long)ctx->data;\n u16 p = udp->dport; udp->crc = 0;\n return p;\n}\n",
    ));
    for want in [
        "u64 t = bpf_dext_pkt(skb, (__u64)(e) + 12, 0, 16);",
        "u32 h = bpf_dext_pkt(skb, (__u64)(ip) + 0, 4, 4) << 2;",
        "bpf_dins_pkt(skb, (__u64)(ip) + 8, 0, 8, 9);",
        "bpf_dins_pkt(skb, (__u64)(ip) + 6, 3, 13, bpf_dext_pkt(skb, (__u64)(ip) + 6, 3, 13) + (2));",
        "u16 *c = &ip->hchecksum;",
        "__rbcc_incr_cksum_l3(skb, &ip->hchecksum, 1, 2);",
        "u16 p = __rbcc_pkt_load((void *)(udp), 2, 0, 16); __rbcc_pkt_store((void *)(udp), 6, 0, 16, 0);",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn packet_fields_of_a_macro_argument_are_read_once() {
    if !available() {
        return;
    }
    let out = squash(&rewrite(
        "#include <bcc/proto.h>\nint f(struct __sk_buff *skb) {\n u8 *cursor = 0;\n\
         struct ip_t *ip = cursor_advance(cursor, sizeof(*ip));\n return max(ip->ttl, 3);\n}\n",
    ));
    assert!(out.contains("return max(bpf_dext_pkt(skb, (__u64)(ip) + 8, 0, 8), 3);"), "{out}");
}

#[test]
fn map_methods_in_the_programs_macros_are_rewritten_where_the_macro_is_defined() {
    if !available() {
        return;
    }
    let out = squash(&rewrite(
        "BPF_HASH(counts, u32, u64);\nBPF_PERF_OUTPUT(events);\nstruct ev_t { u32 pid; };\n\
         #define BUMP(k) counts.increment(k)\n#define BUMP_IN(m, k) m.increment(k, 2)\n\
         #define SEND(c, e) events.perf_submit(c, &e, sizeof(e))\n\
         #define COUNTS counts\n\
         int f(void *ctx) {\n u32 k = 1;\n BUMP(k);\n BUMP(k + 1);\n BUMP_IN(counts, k);\n\
         struct ev_t e = {};\n SEND(ctx, e);\n COUNTS.increment(k);\n return 0;\n}\n",
    ));
    for want in [
        "#define BUMP(k) __rbcc_m_increment(&counts, k)",
        "#define BUMP_IN(m, k) __rbcc_m_increment(&m, k, 2)",
        "#define SEND(c, e) __rbcc_m_perf_submit(&events, c, &e, sizeof(e))",
        "BUMP(k); BUMP(k + 1); BUMP_IN(counts, k);",
        // a macro that names the map, with the method call spelled in the program, is rewritten as usual
        "__rbcc_m_increment(&counts, k);",
        // the record type reaches Python through the macro too
        "__rbcc_event__events(struct ev_t *__rbcc_p)",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn a_map_method_in_a_macro_that_cannot_be_rewritten_is_refused_naming_the_macro_and_the_users_line() {
    if !available() {
        return;
    }
    // the body names the map through another macro: not a map, not a parameter, so not rewritten
    let err = rewrite_only(
        "BPF_HASH(counts, u32, u64);\n#define COUNTS counts\n#define BUMP(k) COUNTS.increment(k)\n\
         int f(void *ctx) {\n u32 k = 1;\n BUMP(k);\n return 0;\n}\n",
        &[],
        "t.c",
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(err.contains("t.c:6:"), "{err}");
    assert!(err.contains("counts.increment() is spelled inside the macro BUMP"), "{err}");
}

#[test]
fn without_the_include_packet_struct_names_are_the_programs_own() {
    if !available() {
        return;
    }
    let err = rewrite_only("int f(struct __sk_buff *skb) { struct ip_t *ip = 0; return ip->ttl; }\n", &[], "t.c")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("incomplete definition of type 'struct ip_t'"), "{err}");
}

#[test]
fn untagged_struct_map_values_are_declared_by_their_definition() {
    if !available() {
        return;
    }
    let out = squash(&rewrite(
        "BPF_HASH(h, u32, struct { u64 a; // first\n u64 b; struct { u32 x; } in; });\nBPF_ARRAY(arr, struct { int n; }, 4);\n\
         int f(void *ctx) { u32 k = 0; typeof(h.leaf) *v = h.lookup(&k); if (v) v->a++; return 0; }\n",
    ));
    for want in [
        "__type(key, u32); __type(value, struct { u64 a ; u64 b ; struct { u32 x ; } in ; }); } h SEC(\".maps\")",
        "__type(key, int); __type(value, struct { int n ; }); } arr SEC(\".maps\");",
        "typeof((*h.value)) *v = __rbcc_m_lookup(&h, &k);",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn kprobes_on_syscall_functions_read_the_syscalls_arguments() {
    if !available() {
        return;
    }
    let out = squash(&rewrite(
        "int kprobe__sys_openat(struct pt_regs *ctx, int dfd, const char *name) { return dfd; }\n\
         int kprobe____x64_sys_close(struct pt_regs *ctx, int fd) { return fd; }\n\
         int kprobe__vfs_fsync(struct pt_regs *ctx, struct file *file) { return 0; }\n",
    ));
    for want in [
        "SEC(\"kprobe/sys_openat\") int kprobe__sys_openat(struct pt_regs *ctx) { struct pt_regs *__rbcc_regs = \
         (struct pt_regs *)PT_REGS_PARM1(ctx); int dfd = (typeof(dfd))(PT_REGS_PARM1_CORE_SYSCALL(__rbcc_regs));",
        "int fd = (typeof(fd))(PT_REGS_PARM1_CORE_SYSCALL(__rbcc_regs));",
        "struct file *file = (typeof(file))(PT_REGS_PARM1(ctx));",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}
