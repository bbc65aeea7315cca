/* Small inline functions of the kernel's headers that bcc programs call (`tcp_sk(sk)`,
 * `sg_is_last(&sg)`): BTF describes types, never function bodies. Each is rbcc's own, written from
 * what the kernel's does.
 *
 * The rewriter turns reads through kernel pointers into probe reads only in the program's own text,
 * so a field these functions read is read with BPF_CORE_READ (bpf_probe_read_kernel with the
 * kernel's field offset): that works whether the struct is in kernel memory or a copy the program
 * made on its stack. */
#ifndef __RBCC_KINLINE_H
#define __RBCC_KINLINE_H

/* Sockets: each protocol's socket struct begins with the more general one (tcp_sock with
 * inet_connection_sock, that with inet_sock, that with sock), so the kernel's accessors are casts. */
static __always_inline struct inet_sock *inet_sk(const struct sock *sk)
{
	return (struct inet_sock *)sk;
}
static __always_inline struct inet_connection_sock *inet_csk(const struct sock *sk)
{
	return (struct inet_connection_sock *)sk;
}
static __always_inline struct tcp_sock *tcp_sk(const struct sock *sk)
{
	return (struct tcp_sock *)sk;
}
static __always_inline struct udp_sock *udp_sk(const struct sock *sk)
{
	return (struct udp_sock *)sk;
}
static __always_inline struct inet_timewait_sock *inet_twsk(const struct sock *sk)
{
	return (struct inet_timewait_sock *)sk;
}
static __always_inline struct inet_request_sock *inet_rsk(const struct request_sock *req)
{
	return (struct inet_request_sock *)req;
}
static __always_inline struct tcp_request_sock *tcp_rsk(const struct request_sock *req)
{
	return (struct tcp_request_sock *)req;
}

/* Scatterlists: the low two bits of page_link mark an entry that chains to the next array of
 * entries (SG_CHAIN) or ends the list (SG_END); the rest is that array's, or the page's, address. */
#define SG_CHAIN 0x01UL
#define SG_END 0x02UL
#define SG_PAGE_LINK_MASK (SG_CHAIN | SG_END)
static __always_inline unsigned long __rbcc_sg_link(struct scatterlist *sg)
{
	return BPF_CORE_READ(sg, page_link);
}
static __always_inline bool sg_is_chain(struct scatterlist *sg)
{
	return __rbcc_sg_link(sg) & SG_CHAIN;
}
static __always_inline bool sg_is_last(struct scatterlist *sg)
{
	return __rbcc_sg_link(sg) & SG_END;
}
static __always_inline struct scatterlist *sg_chain_ptr(struct scatterlist *sg)
{
	return (struct scatterlist *)(__rbcc_sg_link(sg) & ~SG_PAGE_LINK_MASK);
}
static __always_inline struct page *sg_page(struct scatterlist *sg)
{
	return (struct page *)(__rbcc_sg_link(sg) & ~SG_PAGE_LINK_MASK);
}
/* The entry after sg: none after the last, and a chain entry stands for the array it points to. */
static __always_inline struct scatterlist *sg_next(struct scatterlist *sg)
{
	if (sg_is_last(sg))
		return NULL;
	sg++;
	if (sg_is_chain(sg))
		sg = sg_chain_ptr(sg);
	return sg;
}

/* Receive queues: a driver records queue n of a received packet as queue_mapping n + 1, keeping 0
 * for "not recorded". */
static __always_inline __u16 skb_get_queue_mapping(const struct sk_buff *skb)
{
	return BPF_CORE_READ((struct sk_buff *)skb, queue_mapping);
}
static __always_inline bool skb_rx_queue_recorded(const struct sk_buff *skb)
{
	return skb_get_queue_mapping(skb) != 0;
}
static __always_inline __u16 skb_get_rx_queue(const struct sk_buff *skb)
{
	return skb_get_queue_mapping(skb) - 1;
}

/* 64-bit division (linux/math64.h): the kernel has these for 32-bit machines; BPF divides 64-bit
 * unsigned numbers itself. (The signed forms are left out: BPF before cpu v4 cannot divide signed.) */
static __always_inline __u64 div_u64(__u64 dividend, __u32 divisor)
{
	return dividend / divisor;
}
static __always_inline __u64 div64_u64(__u64 dividend, __u64 divisor)
{
	return dividend / divisor;
}
static __always_inline __u64 div_u64_rem(__u64 dividend, __u32 divisor, __u32 *remainder)
{
	*remainder = dividend % divisor;
	return dividend / divisor;
}

/* memcmp (kdefs.h names it): the first differing byte decides, as unsigned. A loop clang unrolls for a
 * constant n; the verifier bounds one it does not. */
static __always_inline int __rbcc_memcmp(const void *a, const void *b, unsigned long n)
{
	const unsigned char *x = a, *y = b;
	for (unsigned long i = 0; i < n; i++) {
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	}
	return 0;
}

#endif /* __RBCC_KINLINE_H */
