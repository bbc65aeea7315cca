//! Rewriter tests: each bcc construct, parsed by the real libclang against this kernel's BTF, and
//! the C the rewriter emits for it. They need libclang and /sys/kernel/btf/vmlinux; without them
//! they say so and return.

use super::rewrite_only;

pub(super) fn available() -> bool {
    let ok = std::path::Path::new(crate::kernel::btf::VMLINUX_BTF).exists() && clang_sys::load().is_ok();
    if !ok {
        eprintln!("skipped: needs libclang and the kernel's BTF");
    }
    ok
}

pub(super) fn rewrite(text: &str) -> String {
    if std::env::var_os("RBCC_CACHE_DIR").is_none() && unsafe { libc::geteuid() } != 0 {
        // SAFETY (set_var): tests set the same value from every thread.
        std::env::set_var("RBCC_CACHE_DIR", std::env::temp_dir().join("rbcc-test-cache"));
    }
    match rewrite_only(text, &[], "test.c") {
        Ok(r) => r.text,
        Err(e) => panic!("rewrite failed: {e}"),
    }
}

pub(super) fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn map_declarations_become_btf_maps() {
    if !available() {
        return;
    }
    let out = squash(&rewrite(
        "struct key_t { u32 pid; char comm[16]; };\nBPF_HASH(counts, struct key_t, u64, 512);\nBPF_ARRAY(arr, u32);\n\
         BPF_HISTOGRAM(dist);\nBPF_PERCPU_ARRAY(pc);\nBPF_LRU_HASH(lru, u32);\nBPF_PERF_OUTPUT(events);\n\
         BPF_RINGBUF_OUTPUT(rb, 8);\nBPF_STACK_TRACE(stacks, 1024);\nBPF_TABLE(\"percpu_hash\", u32, u32, t, 16);\n\
         BPF_HISTOGRAM(by_key, struct key_t);\nBPF_HISTOGRAM(by_u32, u32, 128);\n",
    ));
    for want in [
        "struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 512); __type(key, struct key_t); __type(value, u64); } counts SEC(\".maps\");",
        "__uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 10240); __type(key, int); __type(value, u32); } arr SEC",
        "__uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 64); __type(key, int); __type(value, __u64); } dist SEC",
        "BPF_MAP_TYPE_PERCPU_ARRAY",
        "__uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 10240); __type(key, u32); __type(value, __u64); } lru",
        "BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, sizeof(int)); __uint(value_size, sizeof(__u32)); } events",
        "BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 8 * 4096); } rb",
        "BPF_MAP_TYPE_STACK_TRACE); __uint(max_entries, 1024);",
        "__uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, 16); __type(key, u32); __type(value, u32); } t SEC",
        "__uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, struct key_t); __type(value, __u64); } by_key",
        "__uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 128); __type(key, u32); __type(value, __u64); } by_u32",
        "char _license[] SEC(\"license\") = \"GPL\";",
        "char _license[] SEC(\"license\") = __RBCC_STR(BPF_LICENSE);",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn map_methods_become_helper_calls() {
    if !available() {
        return;
    }
    let out = rewrite(
        "BPF_HASH(h, u32, u64);\nBPF_PERF_OUTPUT(events);\nstruct data_t { u32 pid; };\n\
         int f(struct pt_regs *ctx) {\n u32 k = 1; u64 zero = 0, *v;\n v = h.lookup(&k);\n h.update(&k, &zero);\n\
         h.insert(&k, &zero);\n h.delete(&k);\n h.increment(k);\n h.increment(k, 5);\n h.atomic_increment(k);\n\
         v = h.lookup_or_try_init(&k, &zero);\n struct data_t d = {};\n events.perf_submit(ctx, &d, sizeof(d));\n return 0;\n}\n",
    );
    for want in [
        "v = __rbcc_m_lookup(&h, &k);",
        "__rbcc_m_update(&h, &k, &zero);",
        "__rbcc_m_insert(&h, &k, &zero);",
        "__rbcc_m_delete(&h, &k);",
        "__rbcc_m_increment(&h, k);",
        "__rbcc_m_increment(&h, k, 5);",
        "__rbcc_m_atomic_increment(&h, k);",
        "__rbcc_m_lookup_or_try_init(&h, &k, &zero);",
        "__rbcc_m_perf_submit(&events, ctx, &d, sizeof(d));",
        "SEC(\"kprobe\") int f(struct pt_regs *ctx)",
        "void __rbcc_event__events(struct data_t *__rbcc_p) {}",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // Lines stay where the user wrote them.
    assert_eq!(out.lines().position(|l| l.contains("__rbcc_m_delete")), Some(8));
}

#[test]
fn an_argument_with_commas_in_braces_stays_one_argument() {
    if !available() {
        return;
    }
    let out = rewrite(
        "struct key_t { u32 a; u32 b; };\nBPF_HASH(h, struct key_t, u64);\n\
         int f(struct pt_regs *ctx) {\n u64 one = 1;\n h.increment((struct key_t){1, 2});\n\
         h.increment((struct key_t){.a = 3, .b = 4}, 5);\n h.update(&(struct key_t){7, 8}, &one);\n\
         u64 *v = h.lookup(&(struct key_t){7, (u32)(8, 8)});\n h.increment(((struct key_t){9, 9}));\n return 0;\n}\n",
    );
    for want in [
        "__rbcc_m_increment(&h, ((struct key_t){1, 2}));",
        "__rbcc_m_increment(&h, ((struct key_t){.a = 3, .b = 4}), 5);",
        "__rbcc_m_update(&h, (&(struct key_t){7, 8}), &one);",
        "__rbcc_m_lookup(&h, (&(struct key_t){7, (u32)(8, 8)}));",
        // already one argument to the preprocessor: left as written
        "__rbcc_m_increment(&h, ((struct key_t){9, 9}));",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn a_struct_keys_padding_is_zeroed_before_each_method_reads_it() {
    if !available() {
        return;
    }
    let out = rewrite(
        "struct in_t { u8 a; u32 b; };\nstruct key_t { u32 pid; u64 ts; struct in_t in; };\n\
         struct flat_t { u32 a; u32 b; };\nBPF_HASH(h, struct key_t, u64);\nBPF_HASH(f, struct flat_t, u64);\n\
         int g(void *ctx) {\n struct key_t k = {.pid = 1, .ts = 2};\n h.increment(k);\n u64 z = 0, *v = h.lookup(&k);\n\
         struct flat_t fl = {.a = 1};\n f.increment(fl);\n return 0;\n}\n",
    );
    let clear = "__builtin_memset((char *)&k + 4, 0, 4), __builtin_memset((char *)&k + 17, 0, 3), ";
    for want in [
        format!("__rbcc_m_increment(&h, ({clear}k));"),
        format!("*v = __rbcc_m_lookup(&h, ({clear}&k));"),
        "__rbcc_m_increment(&f, fl);".to_string(),
    ] {
        assert!(out.contains(&want), "missing {want:?} in:\n{out}");
    }
    assert_eq!(out.lines().position(|l| l.contains("__rbcc_m_increment(&f")), Some(10));
}

#[test]
fn kprobe_arguments_come_from_registers() {
    if !available() {
        return;
    }
    let out = rewrite(
        "int kprobe__tcp_v4_connect(struct pt_regs *ctx, struct sock *sk, int len)\n{\n u16 d = sk->__sk_common.skc_dport;\n return d + len;\n}\n\
         int kretprobe__tcp_v4_connect(struct pt_regs *ctx) { return PT_REGS_RC(ctx); }\n\
         int syscall__execve(struct pt_regs *ctx, const char *filename) { return 0; }\n",
    );
    for want in [
        "SEC(\"kprobe/tcp_v4_connect\") int kprobe__tcp_v4_connect(struct pt_regs *ctx)\n{ struct sock *sk = (typeof(sk))(PT_REGS_PARM1(ctx)); int len = (typeof(len))(PT_REGS_PARM2(ctx));",
        "u16 d = __rbcc_kread(sk->__sk_common.skc_dport);",
        "SEC(\"kretprobe/tcp_v4_connect\") int kretprobe__tcp_v4_connect(struct pt_regs *ctx)",
        "struct pt_regs *__rbcc_regs = (struct pt_regs *)PT_REGS_PARM1(ctx); const char *filename = (typeof(filename))(PT_REGS_PARM1_CORE_SYSCALL(__rbcc_regs));",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn kernel_pointer_chains_become_probe_reads() {
    if !available() {
        return;
    }
    let out = rewrite(
        "RAW_TRACEPOINT_PROBE(sched_switch) {\n struct task_struct *prev = (struct task_struct *)ctx->args[1];\n\
         u32 pid = prev->pid;\n char c[16]; bpf_probe_read_kernel(&c, sizeof(c), prev->comm);\n return pid;\n}\n\
         TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n struct task_struct *t = (struct task_struct *)bpf_get_current_task();\n\
         u32 ppid = t->real_parent->tgid;\n u64 *p = &t->real_parent->utime;\n u32 nr = args->__syscall_nr;\n return ppid + nr + (p != 0);\n}\n",
    );
    for want in [
        "u32 pid = __rbcc_kread(prev->pid);",
        // An array member is only an address: no read.
        "bpf_probe_read_kernel(&c, sizeof(c), prev->comm);",
        "u32 ppid = __rbcc_kread(__rbcc_kread(t->real_parent)->tgid);",
        // Taking an address reads only the pointer on the way.
        "u64 *p = &__rbcc_kread(t->real_parent)->utime;",
        // The tracepoint's own context is read directly.
        "u32 nr = args->__syscall_nr;",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn stack_and_ring_buffer_methods() {
    if !available() {
        return;
    }
    let out = rewrite(
        "struct ev { u32 pid; };\nBPF_STACK_TRACE(stacks, 128);\nBPF_RINGBUF_OUTPUT(rb, 4);\n\
         TRACEPOINT_PROBE(sched, sched_switch) {\n int id = stacks.get_stackid(args, 0);\n\
         struct ev *e = rb.ringbuf_reserve(sizeof(*e));\n if (!e) return 0;\n e->pid = id;\n rb.ringbuf_submit(e, 0);\n return 0;\n}\n",
    );
    for want in [
        "int id = __rbcc_m_get_stackid(&stacks, args, 0);",
        "struct ev *e = __rbcc_m_ringbuf_reserve(&rb, sizeof(*e));",
        "__rbcc_m_ringbuf_submit(&rb, e, 0);",
        "e->pid = id;",
        "void __rbcc_event__rb(struct ev *__rbcc_p) {}",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn parse_errors_name_the_users_line() {
    if !available() {
        return;
    }
    let err = rewrite_only("int x;\n\nint f(void *ctx) { return nope; }\n", &[], "prog.c").expect_err("an error");
    let msg = err.to_string();
    assert!(msg.contains("prog.c:3:"), "{msg}");
    assert!(msg.contains("nope"), "{msg}");
}

#[test]
fn scratch_file_takes_the_user_file_name() {
    assert_eq!(super::scratch_name("<bpf text>"), "main.c");
    assert_eq!(super::scratch_name("/home/me/tools/biolatency.c"), "biolatency.c");
    assert_eq!(super::scratch_name("probe.bpf"), "probe.bpf.c");
    assert_eq!(super::scratch_name("/"), "main.c");
}

#[test]
fn static_helpers_are_inlined_and_read_kernel_structs_with_probe_reads() {
    if !available() {
        return;
    }
    let out = squash(&rewrite(
        "struct val_t { u64 n; };\n\
         static u32 dev_of(struct gendisk *disk, struct val_t *v, struct pt_regs *regs) {\n\
         v->n += 1;\n return disk->major << 20 | disk->first_minor; }\n\
         static __noinline int keep(int x) { return x; }\n\
         int do_count() { return 0; }\n",
    ));
    for want in [
        "__attribute__((always_inline)) static u32 dev_of(",
        "__rbcc_kread(disk->major)",
        "__rbcc_kread(disk->first_minor)",
        "v->n += 1;", // the program's own struct is not kernel memory
        "static __noinline int keep(",
        "SEC(\"kprobe\") int do_count()", // a function without parameters is a program too
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("always_inline)) static __noinline"), "{out}");
}

#[test]
fn probe_macros_give_their_own_sections() {
    if !available() {
        return;
    }
    let out = squash(&rewrite(
        "KFUNC_PROBE(vfs_read, struct file *file, char *buf, size_t count) { return count > 1; }\n\
         KRETFUNC_PROBE(vfs_read, struct file *file, char *buf, size_t count, loff_t *pos, ssize_t ret) { return 0; }\n",
    ));
    // helpers.h's KFUNC_PROBE/KRETFUNC_PROBE expand to SEC("fentry/...")/SEC("fexit/..."): nothing is added.
    assert!(out.contains("KFUNC_PROBE(vfs_read,") && out.contains("KRETFUNC_PROBE(vfs_read,"), "{out}");
    assert!(!out.contains("SEC(\"f"), "{out}");
}

#[test]
fn casts_to_kernel_structs_are_kernel_pointers_except_in_packet_programs() {
    if !available() {
        return;
    }
    let tracing = squash(&rewrite(
        "#include <net/sock.h>\nRAW_TRACEPOINT_PROBE(inet_sock_set_state) {\n\
         struct sock *sk = (struct sock *)ctx->args[0];\n return sk->sk_state; }\n",
    ));
    assert!(tracing.contains("__rbcc_kread(sk->sk_state)"), "{tracing}");
    let packet = squash(&rewrite(
        "int on_xdp(struct xdp_md *ctx) {\n void *data = (void *)(long)ctx->data;\n\
         struct ethhdr *eth = (struct ethhdr *)data;\n return eth->h_proto; }\n",
    ));
    assert!(packet.contains("return eth->h_proto;"), "{packet}");
    assert!(!packet.contains("__rbcc_kread"), "{packet}");
}

#[test]
fn addresses_taken_through_kernel_pointers_read_nothing_even_in_macros() {
    if !available() {
        return;
    }
    let out = squash(&rewrite(
        "#include <net/sock.h>\n#define PARENT(t) (t)->real_parent\n#define SLOT(t) (&(t)->real_parent)\n\
         #define FLAG_BYTE(th) (((u8 *)th)[13])\n\
         int kprobe__inet_bind(struct pt_regs *ctx, struct sock *sk) {\n\
         int off = offsetof(struct sock, sk_lingertime);\n\
         u8 *p = (void *)((u64)&sk->sk_gso_max_segs) - 3;\n\
         u16 port = ntohs(sk->__sk_common.skc_dport);\n\
         struct task_struct *t = (struct task_struct *)bpf_get_current_task();\n\
         u32 ppid = PARENT(t)->tgid;\n void *slot = SLOT(t);\n u8 flags = FLAG_BYTE(sk);\n\
         u16 dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));\n\
         return off + port + ppid + flags + dport + (p != slot); }\n",
    ));
    for want in [
        // offsetof's `&((type *)0)->member` comes from a macro body: neither read nor wrapped.
        "int off = offsetof(struct sock, sk_lingertime);",
        "u8 *p = (void *)((u64)&sk->sk_gso_max_segs) - 3;",
        // ntohs uses its argument three times: one read.
        "u16 port = ntohs(__rbcc_kread(sk->__sk_common.skc_dport));",
        // A macro's whole expansion is a node's own text, and is read like it.
        "u32 ppid = __rbcc_kread(__rbcc_kread(PARENT(t))->tgid);",
        "void *slot = SLOT(t);",
        // Parentheses around a macro's expansion (`tcp_flag_byte(th)`) leave it the node's own text.
        "u8 flags = __rbcc_kread(FLAG_BYTE(sk));",
        // A reading macro in another macro's argument reads for itself.
        "u16 dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn kernel_struct_pointers_from_tracepoint_fields_maps_and_helpers_are_read() {
    if !available() {
        return;
    }
    let out = squash(&rewrite(
        "#include <net/sock.h>\nBPF_HASH(socks, u32, struct sock *);\n\
         static struct tcphdr *tcp_of(const struct sk_buff *skb) {\n\
         return (struct tcphdr *)(skb->head + skb->transport_header); }\n\
         TRACEPOINT_PROBE(skb, kfree_skb) {\n\
         struct sk_buff *skb = args->skbaddr;\n struct sock *sk = skb->sk;\n u32 k = 0;\n\
         socks.update(&k, &sk);\n struct sock **skpp = socks.lookup(&k);\n if (!skpp) return 0;\n\
         struct sock *skp = *skpp;\n u16 dport = skp->__sk_common.skc_dport;\n\
         struct tcphdr *th = tcp_of(skb);\n u8 flags = ((u8 *)th)[13];\n\
         return dport + flags + th->source + args->protocol; }\n\
         TRACEPOINT_PROBE(syscalls, sys_enter_connect) {\n\
         struct sockaddr *addr = args->uservaddr;\n return addr->sa_family; }\n",
    ));
    for want in [
        // A tracepoint's `void *` field given a kernel struct's type is a kernel pointer.
        "struct sk_buff *skb = args->skbaddr;",
        "struct sock *sk = __rbcc_kread(skb->sk);",
        // A kernel pointer kept in a map value is one when it comes back out.
        "struct sock *skp = *skpp;",
        "u16 dport = __rbcc_kread(skp->__sk_common.skc_dport);",
        // The program's own helper returning a kernel struct's pointer.
        "u8 flags = __rbcc_kread(((u8 *)th)[13]);",
        "__rbcc_kread(th->source)",
        "return (struct tcphdr *)(__rbcc_kread(skb->head) + __rbcc_kread(skb->transport_header));",
        "args->protocol;",
        // A syscall's pointer arguments are user memory: left to the program's bpf_probe_read_user.
        "return addr->sa_family;",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn btf_typed_contexts_keep_their_trusted_pointers() {
    if !available() {
        return;
    }
    let out = squash(&rewrite(
        "BPF_ITER(task) {\n struct seq_file *seq = ctx->meta->seq;\n struct task_struct *task = ctx->task;\n\
         if (!task) return 0;\n BPF_SEQ_PRINTF(seq, \"%d\\n\", task->pid);\n return 0; }\n",
    ));
    for want in ["struct seq_file *seq = ctx->meta->seq;", "struct task_struct *task = ctx->task;", ", task->pid)"] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn a_program_may_define_a_kernel_struct_again_and_it_is_still_kernel_memory() {
    if !available() {
        return;
    }
    let text = "#include <linux/sched.h>\n#include <linux/nsproxy.h>\n\
         struct mnt_namespace {\n struct ns_common ns;\n};\n\
         TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n\
         struct task_struct *task = (struct task_struct *)bpf_get_current_task();\n\
         struct nsproxy *nsproxy = task->nsproxy;\n struct mnt_namespace *mnt_ns = nsproxy->mnt_ns;\n\
         // struct mnt_namespace stays as written in comments\n\
         return mnt_ns->ns.inum + sizeof(struct mnt_namespace); }\n";
    let out = rewrite(text);
    assert_eq!(out.lines().take(11).count(), text.lines().count());
    let out = squash(&out);
    for want in [
        "struct __rbcc_user_mnt_namespace { struct ns_common ns; };",
        "struct __rbcc_user_mnt_namespace *mnt_ns = __rbcc_kread(nsproxy->mnt_ns);",
        "// struct mnt_namespace stays as written in comments",
        "return __rbcc_kread(mnt_ns->ns.inum) + sizeof(struct __rbcc_user_mnt_namespace);",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    // The program compiles, and clang's complaints about the type use the user's name.
    super::compile(text, &[], "ns.c").expect("compiles");
    let Err(err) = super::compile(&text.replace("ns.inum", "nope"), &[], "ns.c") else {
        panic!("compiled a member that does not exist");
    };
    let msg = err.to_string();
    assert!(msg.contains("ns.c:11:") && msg.contains("'nope' in 'struct mnt_namespace'"), "{msg}");
}

#[test]
fn calls_returning_kernel_struct_pointers_are_kernel_pointers() {
    if !available() {
        return;
    }
    let out = squash(&rewrite(
        "#include <net/sock.h>\nRAW_TRACEPOINT_PROBE(inet_sock_set_state) {\n\
         struct sock *sk = (struct sock *)ctx->args[0];\n struct tcp_sock *tp = tcp_sk(sk);\n\
         return tp->srtt_us + inet_sk(sk)->inet_sport; }\n",
    ));
    // kinline.h's tcp_sk()/inet_sk() hand back the kernel pointer they were given
    assert!(out.contains("__rbcc_kread(tp->srtt_us)"), "{out}");
    assert!(out.contains("__rbcc_kread(inet_sk(sk)->inet_sport)"), "{out}");
}
