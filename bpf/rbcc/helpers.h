/* The bcc dialect of BPF C, made valid C.
 *
 * Parse mode (__RBCC_PARSE__): libclang reads the user's program with these declarations. A map is a
 * struct variable whose members are the methods a bcc program calls on it (`counts.increment(k)`), and
 * whose fields record the map's kind, key, leaf, size and flags. The rewriter replaces every map
 * declaration with a libbpf BTF map and every method call with the matching __rbcc_m_* macro.
 *
 * Compile mode: the macros below implement those methods and the bcc helpers on top of libbpf. */
#ifndef __RBCC_HELPERS_H
#define __RBCC_HELPERS_H

#define __RBCC_SEL4(_1, _2, _3, _4, NAME, ...) NAME
#define __RBCC_SEL2(_1, _2, NAME, ...) NAME

#ifdef __RBCC_PARSE__

#define BPF_F_TABLE(_kind, _key, _leaf, _name, _size, _flags)                                            \
	struct __rbcc_map_##_name {                                                                      \
		_key key;                                                                                \
		_leaf leaf;                                                                              \
		char __max_entries[_size];                                                               \
		char __flags[(_flags) + 1];                                                              \
		_leaf *(*lookup)(_key *);                                                                \
		_leaf *(*lookup_or_init)(_key *, _leaf *);                                               \
		_leaf *(*lookup_or_try_init)(_key *, _leaf *);                                           \
		int (*update)(_key *, _leaf *);                                                          \
		int (*insert)(_key *, _leaf *);                                                          \
		int (*delete)(_key *);                                                                   \
		void (*increment)(_key, ...);                                                            \
		void (*atomic_increment)(_key, ...);                                                     \
		int (*get_stackid)(void *, __u64);                                                       \
		int (*perf_submit)(void *, void *, __u32);                                               \
		int (*ringbuf_output)(void *, __u64, __u64);                                             \
		void *(*ringbuf_reserve)(__u64);                                                         \
		void (*ringbuf_submit)(void *, __u64);                                                   \
		void (*ringbuf_discard)(void *, __u64);                                                  \
		__u64 (*ringbuf_query)(__u64);                                                           \
		int (*perf_submit_skb)(void *, __u32, void *, __u32);                                    \
		__u64 (*perf_read)(__u64);                                                               \
		int (*perf_counter_value)(__u64, void *, __u32);                                         \
		void (*call)(void *, int);                                                               \
		int (*push)(_leaf *, __u64);                                                             \
		int (*pop)(_leaf *);                                                                     \
		int (*peek)(_leaf *);                                                                    \
		long (*redirect_map)(__u32, __u64);                                                      \
		int (*check_current_task)(__u32);                                                        \
		_leaf *(*get_local_storage)(__u64);                                                      \
		int (*sock_map_update)(void *, void *, __u64);                                           \
		int (*sock_hash_update)(void *, void *, __u64);                                          \
		int (*msg_redirect_map)(void *, __u32, __u64);                                           \
		int (*sk_redirect_map)(void *, __u32, __u64);                                            \
		int (*msg_redirect_hash)(void *, void *, __u64);                                         \
		int (*sk_redirect_hash)(void *, void *, __u64);                                          \
		_leaf *(*sk_storage_get)(void *, void *, int);                                           \
		int (*sk_storage_delete)(void *);                                                        \
		_leaf *(*inode_storage_get)(void *, void *, int);                                        \
		int (*inode_storage_delete)(void *);                                                     \
		_leaf *(*task_storage_get)(void *, void *, int);                                         \
		int (*task_storage_delete)(void *);                                                      \
	} _name __attribute__((annotate("rbcc_map:" _kind)))

int __rbcc_trace_printk(const char *fmt, ...);
#define bpf_trace_printk __rbcc_trace_printk

#define TRACEPOINT_PROBE(category, event)                                                                \
	int tracepoint__##category##__##event(struct tracepoint__##category##__##event *args)
#define RAW_TRACEPOINT_PROBE(event) int raw_tracepoint__##event(struct bpf_raw_tracepoint_args *ctx)
#define KFUNC_PROBE(event, args...) int kfunc__##event(unsigned long long *ctx, ##args)
#define KRETFUNC_PROBE(event, args...) int kretfunc__##event(unsigned long long *ctx, ##args)
#define LSM_PROBE(hook, args...) int lsm__##hook(unsigned long long *ctx, ##args)
#define MODULE_KFUNC_PROBE(module, event, args...) int kfunc__##module##__##event(unsigned long long *ctx, ##args)
#define MODULE_KRETFUNC_PROBE(module, event, args...)                                                   \
	int kretfunc__##module##__##event(unsigned long long *ctx, ##args)
#define KMOD_RET(event, args...) int kmod_ret__##event(unsigned long long *ctx, ##args)
#define BPF_ITER(target) int bpf_iter__##target(struct bpf_iter__##target *ctx)

#else /* compile mode */

#define TRACEPOINT_PROBE(category, event)                                                                \
	SEC("tracepoint/" #category "/" #event)                                                          \
	int tracepoint__##category##__##event(struct tracepoint__##category##__##event *args)
#define RAW_TRACEPOINT_PROBE(event)                                                                      \
	SEC("raw_tp/" #event) int raw_tracepoint__##event(struct bpf_raw_tracepoint_args *ctx)
/* fentry/fexit with the kernel function's arguments typed (KRETFUNC_PROBE's last one is the return
 * value); `ctx` is in scope as in bcc. */
#define KFUNC_PROBE(event, args...) SEC("fentry/" #event) int BPF_PROG(kfunc__##event, ##args)
#define KRETFUNC_PROBE(event, args...) SEC("fexit/" #event) int BPF_PROG(kretfunc__##event, ##args)
/* An LSM hook: returning non-zero denies the operation. */
#define LSM_PROBE(hook, args...) SEC("lsm/" #hook) int BPF_PROG(lsm__##hook, ##args)
/* fentry/fexit on a function of a kernel module (libbpf finds it in the module's BTF). */
#define MODULE_KFUNC_PROBE(module, event, args...)                                                       \
	SEC("fentry/" #module ":" #event) int BPF_PROG(kfunc__##module##__##event, ##args)
#define MODULE_KRETFUNC_PROBE(module, event, args...)                                                    \
	SEC("fexit/" #module ":" #event) int BPF_PROG(kretfunc__##module##__##event, ##args)
/* fmod_ret: a non-zero return skips the kernel function (one open to error injection) and becomes
 * its return value; the last argument is the return value of earlier fmod_ret programs. */
#define KMOD_RET(event, args...) SEC("fmod_ret/" #event) int BPF_PROG(kmod_ret__##event, ##args)
/* An iterator over kernel objects (task, task_file, bpf_map, ...): called once per object, it writes
 * text with BPF_SEQ_PRINTF(ctx->meta->seq, ...) that user space reads (BPF.open_iter). */
#define BPF_ITER(target) SEC("iter/" #target) int bpf_iter__##target(struct bpf_iter__##target *ctx)

/* bcc's bpf_trace_printk takes the format alone; libbpf's takes it with its size. */
#define bpf_trace_printk(fmt, ...) bpf_printk(fmt, ##__VA_ARGS__)

/* Map methods: `m` is the map's address, the rest are the user's arguments. */
#define __rbcc_m_lookup(m, k) bpf_map_lookup_elem(m, k)
#define __rbcc_m_update(m, k, v) bpf_map_update_elem(m, k, v, BPF_ANY)
#define __rbcc_m_insert(m, k, v) bpf_map_update_elem(m, k, v, BPF_NOEXIST)
#define __rbcc_m_delete(m, k) bpf_map_delete_elem(m, k)
#define __rbcc_m_lookup_or_try_init(m, k, init)                                                          \
	({                                                                                               \
		typeof(*(m)->value) *__rbcc_v = bpf_map_lookup_elem(m, k);                               \
		if (!__rbcc_v) {                                                                         \
			bpf_map_update_elem(m, k, init, BPF_NOEXIST);                                    \
			__rbcc_v = bpf_map_lookup_elem(m, k);                                            \
		}                                                                                        \
		__rbcc_v;                                                                                \
	})
/* bcc's older lookup_or_init leaves the probe (returning 0) when the entry can be neither found nor
 * created, so programs written for it dereference the result unchecked. */
#define __rbcc_m_lookup_or_init(m, k, init)                                                              \
	({                                                                                               \
		typeof(*(m)->value) *__rbcc_vi = __rbcc_m_lookup_or_try_init(m, k, init);                \
		if (!__rbcc_vi)                                                                          \
			return 0;                                                                        \
		__rbcc_vi;                                                                               \
	})
#define __rbcc_add(m, k, n, op)                                                                          \
	({                                                                                               \
		typeof(*(m)->key) __rbcc_k = (k);                                                        \
		typeof(*(m)->value) *__rbcc_v = bpf_map_lookup_elem(m, &__rbcc_k);                       \
		if (__rbcc_v) {                                                                          \
			op(__rbcc_v, n);                                                                 \
		} else {                                                                                 \
			typeof(*(m)->value) __rbcc_z = (n);                                              \
			bpf_map_update_elem(m, &__rbcc_k, &__rbcc_z, BPF_NOEXIST);                       \
		}                                                                                        \
	})
#define __rbcc_plain_add(p, n) (*(p) += (n))
#define __rbcc_atomic_add(p, n) __sync_fetch_and_add(p, n)
#define __rbcc_inc(m, k, n, ...) __rbcc_add(m, k, n, __rbcc_plain_add)
#define __rbcc_ainc(m, k, n, ...) __rbcc_add(m, k, n, __rbcc_atomic_add)
#define __rbcc_m_increment(m, ...) __rbcc_inc(m, __VA_ARGS__, 1)
#define __rbcc_m_atomic_increment(m, ...) __rbcc_ainc(m, __VA_ARGS__, 1)
#define __rbcc_m_get_stackid(m, ctx, flags) bpf_get_stackid(ctx, m, flags)
#define __rbcc_m_perf_submit(m, ctx, data, size) bpf_perf_event_output(ctx, m, BPF_F_CURRENT_CPU, data, size)
#define __rbcc_m_ringbuf_output(m, data, size, flags) bpf_ringbuf_output(m, data, size, flags)
#define __rbcc_m_ringbuf_reserve(m, size) bpf_ringbuf_reserve(m, size, 0)
#define __rbcc_m_ringbuf_submit(m, data, flags) bpf_ringbuf_submit(data, flags)
#define __rbcc_m_ringbuf_discard(m, data, flags) bpf_ringbuf_discard(data, flags)
#define __rbcc_m_ringbuf_query(m, flags) bpf_ringbuf_query(m, flags)
/* The skb's first skb_len bytes follow the record: the length rides in the flags' upper half. */
#define __rbcc_m_perf_submit_skb(m, ctx, skb_len, data, size)                                          \
	bpf_perf_event_output(ctx, m, (((__u64)(skb_len)) << 32) | BPF_F_CURRENT_CPU, data, size)
#define __rbcc_m_perf_read(m, index) bpf_perf_event_read(m, index)
#define __rbcc_m_perf_counter_value(m, index, buf, size) bpf_perf_event_read_value(m, index, buf, size)
#define __rbcc_m_call(m, ctx, index) bpf_tail_call(ctx, m, index)
#define __rbcc_m_push(m, v, flags) bpf_map_push_elem(m, v, flags)
#define __rbcc_m_pop(m, v) bpf_map_pop_elem(m, v)
#define __rbcc_m_peek(m, v) bpf_map_peek_elem(m, v)
#define __rbcc_m_redirect_map(m, index, flags) bpf_redirect_map(m, index, flags)
#define __rbcc_m_check_current_task(m, index) bpf_current_task_under_cgroup(m, index)
#define __rbcc_m_get_local_storage(m, flags) ((typeof((m)->value))bpf_get_local_storage(m, flags))
#define __rbcc_m_sock_map_update(m, ctx, key, flags) bpf_sock_map_update(ctx, m, key, flags)
#define __rbcc_m_sock_hash_update(m, ctx, key, flags) bpf_sock_hash_update(ctx, m, key, flags)
#define __rbcc_m_msg_redirect_map(m, ctx, key, flags) bpf_msg_redirect_map(ctx, m, key, flags)
#define __rbcc_m_sk_redirect_map(m, ctx, key, flags) bpf_sk_redirect_map(ctx, m, key, flags)
#define __rbcc_m_msg_redirect_hash(m, ctx, key, flags) bpf_msg_redirect_hash(ctx, m, key, flags)
#define __rbcc_m_sk_redirect_hash(m, ctx, key, flags) bpf_sk_redirect_hash(ctx, m, key, flags)
/* Local storage: get(owner, initial value or NULL, flags) with BPF_*_STORAGE_GET_F_CREATE to create. */
#define __rbcc_m_sk_storage_get(m, sk, v, flags) ((typeof((m)->value))bpf_sk_storage_get(m, sk, v, flags))
#define __rbcc_m_sk_storage_delete(m, sk) bpf_sk_storage_delete(m, sk)
#define __rbcc_m_inode_storage_get(m, i, v, flags) ((typeof((m)->value))bpf_inode_storage_get(m, i, v, flags))
#define __rbcc_m_inode_storage_delete(m, i) bpf_inode_storage_delete(m, i)
#define __rbcc_m_task_storage_get(m, t, v, flags) ((typeof((m)->value))bpf_task_storage_get(m, t, v, flags))
#define __rbcc_m_task_storage_delete(m, t) bpf_task_storage_delete(m, t)

/* A read of kernel memory the program reached through a kernel pointer (`task->real_parent->tgid`):
 * the rewriter wraps each such read in this. */
#define __rbcc_kread(x)                                                                                  \
	({                                                                                               \
		typeof(x) __rbcc_r;                                                                      \
		bpf_probe_read_kernel(&__rbcc_r, sizeof(__rbcc_r), &(x));                                \
		__rbcc_r;                                                                                \
	})

#endif /* __RBCC_PARSE__ */

/* Tracepoint `__data_loc` fields (strings and arrays stored after the fixed fields): the generated
 * args struct has `u32 data_loc_<field>`, whose low 16 bits are the offset from `args` and high 16
 * bits the length. */
#define __rbcc_data_loc(field) ((char *)args + (args->data_loc_##field & 0xFFFF))
#define TP_DATA_LOC_READ_CONST(dst, field, length)                                                       \
	bpf_probe_read_kernel((void *)(dst), (length), __rbcc_data_loc(field))
#define TP_DATA_LOC_READ(dst, field)                                                                     \
	bpf_probe_read_kernel((void *)(dst), args->data_loc_##field >> 16, __rbcc_data_loc(field))
#define TP_DATA_LOC_READ_STR(dst, field, length)                                                         \
	bpf_probe_read_kernel_str((void *)(dst), (length), __rbcc_data_loc(field))

/* USDT arguments, numbered from 1 as in bcc, through libbpf's usdt.bpf.h (which the program gets when it
 * uses these). bpf_usdt_readarg_p copies what a pointer argument points to from user memory. */
#define bpf_usdt_readarg(n, ctx, addr)                                                                   \
	({                                                                                               \
		long __rbcc_ua = 0;                                                                      \
		int __rbcc_ur = bpf_usdt_arg((struct pt_regs *)(ctx), (n) - 1, &__rbcc_ua);             \
		*(addr) = (typeof(*(addr)))__rbcc_ua;                                                    \
		__rbcc_ur;                                                                               \
	})
#define bpf_usdt_readarg_p(n, ctx, buf, len)                                                             \
	({                                                                                               \
		long __rbcc_ua = 0;                                                                      \
		int __rbcc_ur = bpf_usdt_arg((struct pt_regs *)(ctx), (n) - 1, &__rbcc_ua);             \
		if (!__rbcc_ur)                                                                          \
			__rbcc_ur = bpf_probe_read_user((buf), (len), (void *)__rbcc_ua);                \
		__rbcc_ur;                                                                               \
	})

/* Map declarations with bcc's defaults. */
#define BPF_TABLE(_kind, _key, _leaf, _name, _size) BPF_F_TABLE(_kind, _key, _leaf, _name, _size, 0)

#define __RBCC_HASH1(n) BPF_TABLE("hash", __u64, __u64, n, 10240)
#define __RBCC_HASH2(n, k) BPF_TABLE("hash", k, __u64, n, 10240)
#define __RBCC_HASH3(n, k, v) BPF_TABLE("hash", k, v, n, 10240)
#define __RBCC_HASH4(n, k, v, s) BPF_TABLE("hash", k, v, n, s)
#define BPF_HASH(...) __RBCC_SEL4(__VA_ARGS__, __RBCC_HASH4, __RBCC_HASH3, __RBCC_HASH2, __RBCC_HASH1)(__VA_ARGS__)

#define __RBCC_LRU1(n) BPF_TABLE("lru_hash", __u64, __u64, n, 10240)
#define __RBCC_LRU2(n, k) BPF_TABLE("lru_hash", k, __u64, n, 10240)
#define __RBCC_LRU3(n, k, v) BPF_TABLE("lru_hash", k, v, n, 10240)
#define __RBCC_LRU4(n, k, v, s) BPF_TABLE("lru_hash", k, v, n, s)
#define BPF_LRU_HASH(...) __RBCC_SEL4(__VA_ARGS__, __RBCC_LRU4, __RBCC_LRU3, __RBCC_LRU2, __RBCC_LRU1)(__VA_ARGS__)

#define __RBCC_PCHASH1(n) BPF_TABLE("percpu_hash", __u64, __u64, n, 10240)
#define __RBCC_PCHASH2(n, k) BPF_TABLE("percpu_hash", k, __u64, n, 10240)
#define __RBCC_PCHASH3(n, k, v) BPF_TABLE("percpu_hash", k, v, n, 10240)
#define __RBCC_PCHASH4(n, k, v, s) BPF_TABLE("percpu_hash", k, v, n, s)
#define BPF_PERCPU_HASH(...)                                                                             \
	__RBCC_SEL4(__VA_ARGS__, __RBCC_PCHASH4, __RBCC_PCHASH3, __RBCC_PCHASH2, __RBCC_PCHASH1)(__VA_ARGS__)

#define __RBCC_ARRAY1(n) BPF_TABLE("array", int, __u64, n, 10240)
#define __RBCC_ARRAY2(n, v) BPF_TABLE("array", int, v, n, 10240)
#define __RBCC_ARRAY3(n, v, s) BPF_TABLE("array", int, v, n, s)
#define BPF_ARRAY(...) __RBCC_SEL4(__VA_ARGS__, _, __RBCC_ARRAY3, __RBCC_ARRAY2, __RBCC_ARRAY1)(__VA_ARGS__)

#define __RBCC_PCARRAY1(n) BPF_TABLE("percpu_array", int, __u64, n, 10240)
#define __RBCC_PCARRAY2(n, v) BPF_TABLE("percpu_array", int, v, n, 10240)
#define __RBCC_PCARRAY3(n, v, s) BPF_TABLE("percpu_array", int, v, n, s)
#define BPF_PERCPU_ARRAY(...)                                                                            \
	__RBCC_SEL4(__VA_ARGS__, _, __RBCC_PCARRAY3, __RBCC_PCARRAY2, __RBCC_PCARRAY1)(__VA_ARGS__)

#define __RBCC_HIST1(n) BPF_TABLE("histogram", int, __u64, n, 64)
#define __RBCC_HIST2(n, k) BPF_TABLE("histogram", k, __u64, n, 64)
#define __RBCC_HIST3(n, k, s) BPF_TABLE("histogram", k, __u64, n, s)
#define BPF_HISTOGRAM(...) __RBCC_SEL4(__VA_ARGS__, _, __RBCC_HIST3, __RBCC_HIST2, __RBCC_HIST1)(__VA_ARGS__)

#define BPF_PERF_OUTPUT(_name) BPF_TABLE("perf_output", int, __u32, _name, 0)
#define BPF_RINGBUF_OUTPUT(_name, _page_cnt) BPF_TABLE("ringbuf", int, __u32, _name, _page_cnt)

struct __rbcc_stack_trace {
	__u64 ip[PERF_MAX_STACK_DEPTH];
};
#define BPF_STACK_TRACE(_name, _size) BPF_TABLE("stacktrace", int, struct __rbcc_stack_trace, _name, _size)
/* Frames as (build id, file offset) pairs, which stay meaningful after the process has exited. */
struct __rbcc_stack_trace_buildid {
	struct bpf_stack_build_id trace[PERF_MAX_STACK_DEPTH];
};
#define BPF_STACK_TRACE_BUILDID(_name, _size)                                                            \
	BPF_F_TABLE("stacktrace", int, struct __rbcc_stack_trace_buildid, _name, _size, BPF_F_STACK_BUILD_ID)

/* A map's kind string can carry more than its type: "type:/sys/fs/bpf/path" pins it there (reusing
 * what is pinned), "export/type" lets later programs of this process use it as "extern". */
#define __RBCC_PINNED7(_kind, _key, _leaf, _name, _size, _pinned, _flags)                                \
	BPF_F_TABLE(_kind ":" _pinned, _key, _leaf, _name, _size, _flags)
#define __RBCC_PINNED6(_kind, _key, _leaf, _name, _size, _pinned)                                        \
	BPF_F_TABLE(_kind ":" _pinned, _key, _leaf, _name, _size, 0)
#define __RBCC_SEL7(_1, _2, _3, _4, _5, _6, _7, NAME, ...) NAME
#define BPF_TABLE_PINNED(...) __RBCC_SEL7(__VA_ARGS__, __RBCC_PINNED7, __RBCC_PINNED6)(__VA_ARGS__)
#define BPF_TABLE_PUBLIC(_kind, _key, _leaf, _name, _size) BPF_TABLE("export/" _kind, _key, _leaf, _name, _size)
/* bcc shares these among the programs of one namespace; rbcc among those of one process, like PUBLIC. */
#define BPF_TABLE_SHARED(_kind, _key, _leaf, _name, _size) BPF_TABLE("export/" _kind, _key, _leaf, _name, _size)

#define BPF_QUEUESTACK(_kind, _name, _leaf, _size, _flags) BPF_F_TABLE(_kind, int, _leaf, _name, _size, _flags)
#define BPF_QUEUESTACK_PINNED(_kind, _name, _leaf, _size, _flags, _pinned)                                \
	BPF_QUEUESTACK(_kind ":" _pinned, _name, _leaf, _size, _flags)
#define BPF_QUEUESTACK_PUBLIC(_kind, _name, _leaf, _size, _flags) BPF_QUEUESTACK("export/" _kind, _name, _leaf, _size, _flags)
#define BPF_QUEUESTACK_SHARED(_kind, _name, _leaf, _size, _flags) BPF_QUEUESTACK("export/" _kind, _name, _leaf, _size, _flags)
#define __RBCC_QS3(_kind, _name, _leaf, _size) BPF_QUEUESTACK(_kind, _name, _leaf, _size, 0)
#define __RBCC_QS4(_kind, _name, _leaf, _size, _flags) BPF_QUEUESTACK(_kind, _name, _leaf, _size, _flags)
#define BPF_QUEUE(...) __RBCC_SEL4(__VA_ARGS__, __RBCC_QS4, __RBCC_QS3, _)("queue", __VA_ARGS__)
#define BPF_STACK(...) __RBCC_SEL4(__VA_ARGS__, __RBCC_QS4, __RBCC_QS3, _)("stack", __VA_ARGS__)

#define __RBCC_LPM1(n) BPF_F_TABLE("lpm_trie", __u64, __u64, n, 10240, BPF_F_NO_PREALLOC)
#define __RBCC_LPM2(n, k) BPF_F_TABLE("lpm_trie", k, __u64, n, 10240, BPF_F_NO_PREALLOC)
#define __RBCC_LPM3(n, k, v) BPF_F_TABLE("lpm_trie", k, v, n, 10240, BPF_F_NO_PREALLOC)
#define __RBCC_LPM4(n, k, v, s) BPF_F_TABLE("lpm_trie", k, v, n, s, BPF_F_NO_PREALLOC)
#define BPF_LPM_TRIE(...) __RBCC_SEL4(__VA_ARGS__, __RBCC_LPM4, __RBCC_LPM3, __RBCC_LPM2, __RBCC_LPM1)(__VA_ARGS__)

#define BPF_PROG_ARRAY(_name, _size) BPF_TABLE("prog", __u32, __u32, _name, _size)
#define BPF_PERF_ARRAY(_name, _size) BPF_TABLE("perf_array", int, __u32, _name, _size)
#define BPF_CGROUP_ARRAY(_name, _size) BPF_TABLE("cgroup_array", int, __u32, _name, _size)
#define BPF_DEVMAP(_name, _size) BPF_TABLE("devmap", __u32, int, _name, _size)
#define BPF_CPUMAP(_name, _size) BPF_TABLE("cpumap", __u32, __u32, _name, _size)
#define __RBCC_XSK2(_name, _size) BPF_TABLE("xskmap", __u32, int, _name, _size)
#define __RBCC_XSK3(_name, _size, _pinned) BPF_TABLE("xskmap:" _pinned, __u32, int, _name, _size)
#define BPF_XSKMAP(...) __RBCC_SEL4(__VA_ARGS__, _, __RBCC_XSK3, __RBCC_XSK2, _)(__VA_ARGS__)

/* Maps of maps: the inner map named is the prototype every inner map must match. */
#define BPF_ARRAY_OF_MAPS(_name, _inner, _size) BPF_TABLE("array_of_maps$" _inner, int, int, _name, _size)
#define __RBCC_HOM2(_name, _inner) BPF_TABLE("hash_of_maps$" _inner, int, int, _name, 10240)
#define __RBCC_HOM3(_name, _key, _inner) BPF_TABLE("hash_of_maps$" _inner, _key, int, _name, 10240)
#define __RBCC_HOM4(_name, _key, _inner, _size) BPF_TABLE("hash_of_maps$" _inner, _key, int, _name, _size)
#define BPF_HASH_OF_MAPS(...) __RBCC_SEL4(__VA_ARGS__, __RBCC_HOM4, __RBCC_HOM3, __RBCC_HOM2, _)(__VA_ARGS__)

#define BPF_SOCKMAP(_name, _size) BPF_TABLE("sockmap", __u32, int, _name, _size)
#define __RBCC_SOCKHASH1(_name) BPF_TABLE("sockhash", __u32, int, _name, 10240)
#define __RBCC_SOCKHASH2(_name, _key) BPF_TABLE("sockhash", _key, int, _name, 10240)
#define __RBCC_SOCKHASH3(_name, _key, _size) BPF_TABLE("sockhash", _key, int, _name, _size)
#define BPF_SOCKHASH(...) __RBCC_SEL4(__VA_ARGS__, _, __RBCC_SOCKHASH3, __RBCC_SOCKHASH2, __RBCC_SOCKHASH1)(__VA_ARGS__)

#define BPF_SK_STORAGE(_name, _leaf) BPF_F_TABLE("sk_storage", int, _leaf, _name, 0, BPF_F_NO_PREALLOC)
#define BPF_INODE_STORAGE(_name, _leaf) BPF_F_TABLE("inode_storage", int, _leaf, _name, 0, BPF_F_NO_PREALLOC)
#define BPF_TASK_STORAGE(_name, _leaf) BPF_F_TABLE("task_storage", int, _leaf, _name, 0, BPF_F_NO_PREALLOC)
#define BPF_CGROUP_STORAGE(_name, _leaf) BPF_TABLE("cgroup_storage", struct bpf_cgroup_storage_key, _leaf, _name, 0)
#define BPF_PERCPU_CGROUP_STORAGE(_name, _leaf)                                                          \
	BPF_TABLE("percpu_cgroup_storage", struct bpf_cgroup_storage_key, _leaf, _name, 0)

/* bcc's packet-parsing cursor: the old position, then the cursor moved past _len bytes. */
#define cursor_advance(_cursor, _len)                                                                    \
	({                                                                                               \
		void *__rbcc_c = _cursor;                                                                \
		_cursor += _len;                                                                         \
		__rbcc_c;                                                                                \
	})

/* bcc's helpers. */
static __always_inline unsigned int __rbcc_fls64(__u64 v)
{
	unsigned int n = 0;
	if (v >> 32) { n += 32; v >>= 32; }
	if (v >> 16) { n += 16; v >>= 16; }
	if (v >> 8) { n += 8; v >>= 8; }
	if (v >> 4) { n += 4; v >>= 4; }
	if (v >> 2) { n += 2; v >>= 2; }
	if (v >> 1) { n += 1; v >>= 1; }
	return n + (unsigned int)v;
}
/* floor(log2(v)), 0 for 0. */
static __always_inline unsigned int bpf_log2(unsigned int v)
{
	return v ? __rbcc_fls64(v) - 1 : 0;
}
/* The log2 histogram slot of v: 1 + floor(log2(v)), and 1 for 0 (slot 1 holds 0 and 1). */
static __always_inline unsigned int bpf_log2l(unsigned long v)
{
	return v ? __rbcc_fls64(v) : 1;
}

/* perf_submit/perf_read's "this CPU" index. */
#define CUR_CPU_IDENTIFIER BPF_F_CURRENT_CPU

#define lock_xadd(ptr, val) ((void)__sync_fetch_and_add(ptr, val))

#endif /* __RBCC_HELPERS_H */
