/* bcc's packet helpers (its helpers.h): loads of packet bytes in network order for programs whose
 * context is a struct __sk_buff, the bit-field loads and stores rbcc's rewriter turns reads and
 * assignments of proto.h's header fields into, 64-bit byte order, checksum updates.
 *
 * bcc's load_byte/load_half/load_word are LLVM builtins for the classic BPF_LD_ABS/IND instructions,
 * which only socket filters and tc programs may use and which end the program (returning 0) on a read
 * past the packet; these are bpf_skb_load_bytes, which every skb program may call, and read 0 past the
 * packet. */
#ifndef __RBCC_PACKET_H
#define __RBCC_PACKET_H

static __always_inline __u64 bpf_ntohll(__u64 v)
{
	return bpf_be64_to_cpu(v);
}
static __always_inline __u64 bpf_htonll(__u64 v)
{
	return bpf_cpu_to_be64(v);
}

static __always_inline __u64 load_byte(void *skb, __u64 off)
{
	__u8 v = 0;
	bpf_skb_load_bytes(skb, off, &v, sizeof(v));
	return v;
}
static __always_inline __u64 load_half(void *skb, __u64 off)
{
	__u16 v = 0;
	bpf_skb_load_bytes(skb, off, &v, sizeof(v));
	return bpf_ntohs(v);
}
static __always_inline __u64 load_word(void *skb, __u64 off)
{
	__u32 v = 0;
	bpf_skb_load_bytes(skb, off, &v, sizeof(v));
	return bpf_ntohl(v);
}
static __always_inline __u64 load_dword(void *skb, __u64 off)
{
	__u64 v = 0;
	bpf_skb_load_bytes(skb, off, &v, sizeof(v));
	return bpf_be64_to_cpu(v);
}

/* A field of `width` bits that starts `bofs` bits (0-7) into its first byte spans this many bytes. The
 * rewriter passes constants, so after inlining every length below is one, as the verifier needs. */
#define __RBCC_FIELD_BYTES(bofs, width) ((__u32)(((bofs) + (width) + 7) / 8))
#define __RBCC_FIELD_MASK(width) ((width) < 64 ? (1ULL << (width)) - 1 : ~0ULL)

/* The n (at most 8) bytes at b as a number, the first byte most significant. */
static __always_inline __u64 __rbcc_be_bytes(const __u8 *b, __u32 n)
{
	__u64 v = 0;
#pragma unroll
	for (__u32 i = 0; i < 8; i++)
		if (i < n)
			v = (v << 8) | b[i];
	return v;
}

/* Replace the field's bits in the n bytes at b with val's low `width` bits. */
static __always_inline void __rbcc_put_field(__u8 *b, __u32 n, __u64 bofs, __u64 width, __u64 val)
{
	__u64 shift = n * 8 - bofs - width;
	__u64 mask = __RBCC_FIELD_MASK(width) << shift;
	__u64 v = (__rbcc_be_bytes(b, n) & ~mask) | ((val << shift) & mask);
#pragma unroll
	for (int i = 7; i >= 0; i--) {
		if ((__u32)i < n) {
			b[i] = v & 0xff;
			v >>= 8;
		}
	}
}

/* The field at byte `off` of the skb's packet, `bofs` bits into that byte, `width` bits wide. */
static __always_inline __u64 bpf_dext_pkt(void *skb, __u64 off, __u64 bofs, __u64 width)
{
	__u32 n = __RBCC_FIELD_BYTES(bofs, width);
	__u8 b[8] = {};
	if (n > 8 || bpf_skb_load_bytes(skb, off, b, n) < 0)
		return 0;
	return (__rbcc_be_bytes(b, n) >> (n * 8 - bofs - width)) & __RBCC_FIELD_MASK(width);
}

/* Store val into that field of the skb's packet (tc programs; socket filters cannot write). */
static __always_inline void bpf_dins_pkt(void *skb, __u64 off, __u64 bofs, __u64 width, __u64 val)
{
	__u32 n = __RBCC_FIELD_BYTES(bofs, width);
	__u8 b[8] = {};
	if (n > 8 || bpf_skb_load_bytes(skb, off, b, n) < 0)
		return;
	__rbcc_put_field(b, n, bofs, width, val);
	bpf_skb_store_bytes(skb, off, b, n, 0);
}

/* The same through a real pointer (XDP's packet data, a header copied to the stack), which bcc does
 * not have: the program checks the header lies before data_end, as for any packet read. */
static __always_inline __u64 __rbcc_pkt_load(const void *p, __u64 off, __u64 bofs, __u64 width)
{
	__u32 n = __RBCC_FIELD_BYTES(bofs, width);
	if (n > 8)
		return 0;
	return (__rbcc_be_bytes((const __u8 *)p + off, n) >> (n * 8 - bofs - width)) & __RBCC_FIELD_MASK(width);
}
static __always_inline void __rbcc_pkt_store(void *p, __u64 off, __u64 bofs, __u64 width, __u64 val)
{
	__u32 n = __RBCC_FIELD_BYTES(bofs, width);
	if (n <= 8)
		__rbcc_put_field((__u8 *)p + off, n, bofs, width, val);
}

/* Checksum updates that take the old and new values in host order, sized by the size flag (2, 4 or 8
 * bytes in its low bits), as bcc's do. */
static __always_inline int bpf_l3_csum_replace_(void *skb, __u64 off, __u64 from, __u64 to, __u64 flags)
{
	switch (flags & 0xf) {
	case 2:
		return bpf_l3_csum_replace(skb, off, bpf_htons(from), bpf_htons(to), flags);
	case 4:
		return bpf_l3_csum_replace(skb, off, bpf_htonl(from), bpf_htonl(to), flags);
	case 8:
		return bpf_l3_csum_replace(skb, off, bpf_htonll(from), bpf_htonll(to), flags);
	}
	return bpf_l3_csum_replace(skb, off, from, to, flags);
}
static __always_inline int bpf_l4_csum_replace_(void *skb, __u64 off, __u64 from, __u64 to, __u64 flags)
{
	switch (flags & 0xf) {
	case 2:
		return bpf_l4_csum_replace(skb, off, bpf_htons(from), bpf_htons(to), flags);
	case 4:
		return bpf_l4_csum_replace(skb, off, bpf_htonl(from), bpf_htonl(to), flags);
	case 8:
		return bpf_l4_csum_replace(skb, off, bpf_htonll(from), bpf_htonll(to), flags);
	}
	return bpf_l4_csum_replace(skb, off, from, to, flags);
}

/* bcc's incr_cksum_l3(&ip->hchecksum, old, new) and incr_cksum_l4(&udp->crc, old, new, pseudo): the
 * checksum field's address is its offset in the packet (bcc's cursor); the rewriter adds the skb. */
#ifdef __RBCC_PARSE__
int incr_cksum_l3(void *off, __u64 oldval, __u64 newval);
int incr_cksum_l4(void *off, __u64 oldval, __u64 newval, __u64 flags);
#else
#define __rbcc_incr_cksum_l3(skb, off, oldval, newval)                                                   \
	bpf_l3_csum_replace_(skb, (__u64)(off), oldval, newval, sizeof(newval))
#define __rbcc_incr_cksum_l4(skb, off, oldval, newval, pseudo)                                           \
	bpf_l4_csum_replace_(skb, (__u64)(off), oldval, newval, ((((__u64)(pseudo)) & 0x1) << 4) | sizeof(newval))
#endif

#endif /* __RBCC_PACKET_H */
