/* The packet header structs of bcc's <bcc/proto.h>, for programs that include it.
 *
 * Each struct lays a protocol header out as it is on the wire, bit-fields in network bit order (the
 * first field holds the most significant bits), packed. No C compiler reads such bit-fields right, so
 * rbcc's rewriter turns every read or assignment of a field of these structs into a load or store of
 * its bits (see src/compile/rewrite/packet.rs): `ip->ttl`, `udp->dport`, `ethernet->type` are numbers
 * in host order. In the parse, BPF_PACKET_HEADER marks the structs `deprecated("packet")`, which is how
 * the rewriter (and bcc's) recognises them, a program's own such structs included. */
#ifndef __RBCC_PROTO_H
#define __RBCC_PROTO_H

#ifdef __RBCC_PARSE__
#define BPF_PACKET_HEADER __attribute__((packed)) __attribute__((deprecated("packet")))
#else
#define BPF_PACKET_HEADER __attribute__((packed))
#endif

/* Ethernet II: destination and source MAC addresses, EtherType */
struct ethernet_t {
	__u64 dst : 48;
	__u64 src : 48;
	__u32 type : 16;
} BPF_PACKET_HEADER;

/* IEEE 802.1Q tag: priority, drop eligible (CFI), VLAN id, then the EtherType it carries */
struct dot1q_t {
	__u16 pri : 3;
	__u16 cfi : 1;
	__u16 vlanid : 12;
	__u16 type;
} BPF_PACKET_HEADER;

/* ARP for IPv4 over Ethernet: sender and target hardware (48-bit) and protocol (32-bit) addresses */
struct arp_t {
	__u16 htype;
	__u16 ptype;
	__u8 hlen;
	__u8 plen;
	__u16 oper;
	__u64 sha : 48;
	__u64 spa : 32;
	__u64 tha : 48;
	__u32 tpa;
} BPF_PACKET_HEADER;

/* IPv4, without options: hlen counts 32-bit words; nextp is the protocol */
struct ip_t {
	__u8 ver : 4;
	__u8 hlen : 4;
	__u8 tos;
	__u16 tlen;
	__u16 identification;
	__u16 ffo_unused : 1;
	__u16 df : 1;
	__u16 mf : 1;
	__u16 foffset : 13;
	__u8 ttl;
	__u8 nextp;
	__u16 hchecksum;
	__u32 src;
	__u32 dst;
} BPF_PACKET_HEADER;

struct icmp_t {
	__u8 type;
	__u8 code;
	__u16 checksum;
} BPF_PACKET_HEADER;

/* IPv6: each address as two 64-bit halves */
struct ip6_t {
	__u32 ver : 4;
	__u32 priority : 8;
	__u32 flow_label : 20;
	__u16 payload_len;
	__u8 next_header;
	__u8 hop_limit;
	__u64 src_hi;
	__u64 src_lo;
	__u64 dst_hi;
	__u64 dst_lo;
} BPF_PACKET_HEADER;

/* an IPv6 extension header's first 8 bytes */
struct ip6_opt_t {
	__u8 next_header;
	__u8 ext_len;
	__u8 pad[6];
} BPF_PACKET_HEADER;

struct icmp6_t {
	__u8 type;
	__u8 code;
	__u16 checksum;
} BPF_PACKET_HEADER;

struct udp_t {
	__u16 sport;
	__u16 dport;
	__u16 length;
	__u16 crc;
} BPF_PACKET_HEADER;

/* TCP, without options: offset counts 32-bit words; the flags from CWR (most significant) to FIN */
struct tcp_t {
	__u16 src_port;
	__u16 dst_port;
	__u32 seq_num;
	__u32 ack_num;
	__u8 offset : 4;
	__u8 reserved : 4;
	__u8 flag_cwr : 1;
	__u8 flag_ece : 1;
	__u8 flag_urg : 1;
	__u8 flag_ack : 1;
	__u8 flag_psh : 1;
	__u8 flag_rst : 1;
	__u8 flag_syn : 1;
	__u8 flag_fin : 1;
	__u16 rcv_wnd;
	__u16 cksum;
	__u16 urg_ptr;
} BPF_PACKET_HEADER;

/* VXLAN (RFC 7348): the I flag says the 24-bit VNI (key) is valid */
struct vxlan_t {
	__u32 rsv1 : 4;
	__u32 iflag : 1;
	__u32 rsv2 : 3;
	__u32 rsv3 : 24;
	__u32 key : 24;
	__u32 rsv4 : 8;
} BPF_PACKET_HEADER;

/* VXLAN with the Group Based Policy extension: G, I, D and A flags and a 16-bit group policy tag */
struct vxlan_gbp_t {
	__u32 gflag : 1;
	__u32 rsv1 : 3;
	__u32 iflag : 1;
	__u32 rsv2 : 3;
	__u32 rsv3 : 1;
	__u32 dflag : 1;
	__u32 rsv4 : 1;
	__u32 aflag : 1;
	__u32 rsv5 : 3;
	__u32 tag : 16;
	__u32 key : 24;
	__u32 rsv6 : 8;
} BPF_PACKET_HEADER;

#endif /* __RBCC_PROTO_H */
