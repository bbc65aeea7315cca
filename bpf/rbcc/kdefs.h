/* Constants bcc programs take from kernel headers that BTF cannot carry (#defines, not enums).
 * Values are the kernel's ABI; they do not change between kernel versions. One that came with a later
 * kernel than 5.4 (the first with /sys/kernel/btf, so the first rbcc runs on) is defined from that
 * kernel's LINUX_VERSION_CODE on, since programs test `#ifdef` to learn what the kernel has. */
#ifndef __RBCC_KDEFS_H
#define __RBCC_KDEFS_H

#ifndef NULL
#define NULL ((void *)0)
#endif
#ifndef true
#define true 1
#endif
#ifndef false
#define false 0
#endif

/* address-space and checker annotations of kernel prototypes, which bcc programs copy
 * (`const char __user *filename`); only sparse gives them meaning */
#define __user
#define __kernel
#define __iomem
#define __force
#define __rcu
#define __percpu
#define __bitwise
/* x86's per-CPU address space, which tracepoint formats print into field types (`void __seg_gs *ptr`);
 * a BPF program only ever carries such an address */
#ifndef __seg_gs
#define __seg_gs
#endif
#ifndef __seg_fs
#define __seg_fs
#endif

/* time */
#define NSEC_PER_SEC 1000000000ULL
#define NSEC_PER_MSEC 1000000ULL
#define NSEC_PER_USEC 1000ULL
#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL
#define MSEC_PER_SEC 1000ULL

/* memory */
#define PAGE_SHIFT 12
#define PAGE_SIZE (1UL << PAGE_SHIFT)
#if defined(__TARGET_ARCH_x86)
/* x86-64 memory layout constants (the direct map's base for 4- and 5-level paging, the kernel text). */
#define __PAGE_OFFSET_BASE_L4 0xffff888000000000UL
#define __PAGE_OFFSET_BASE_L5 0xff11000000000000UL
#define __START_KERNEL_map 0xffffffff80000000UL
#endif

/* sockets and protocols */
#define AF_UNSPEC 0
#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define AF_NETLINK 16
#define AF_PACKET 17
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3
#define INADDR_ANY 0x00000000UL
#define INADDR_BROADCAST 0xffffffffUL
#define INADDR_LOOPBACK 0x7f000001UL
/* socket options a sockops program sets with bpf_setsockopt (the numbering every architecture rbcc
 * builds for shares for these) */
#define SOL_IP 0
#define SOL_TCP 6
#define SOL_IPV6 41
#define SO_REUSEADDR 2
#define SO_SNDBUF 7
#define SO_RCVBUF 8
#define SO_KEEPALIVE 9
#define SO_PRIORITY 12
#define SO_REUSEPORT 15
#define SO_BINDTODEVICE 25
#define SO_MARK 36
#define IP_TOS 1
#define IP_TTL 2
#define IPV6_TCLASS 67
#define TCP_NODELAY 1
#define TCP_MAXSEG 2
#define TCP_KEEPIDLE 4
#define TCP_KEEPINTVL 5
#define TCP_KEEPCNT 6
#define TCP_WINDOW_CLAMP 10
#define TCP_CONGESTION 13
#define TCP_SAVED_SYN 28
/* IPv6 extension headers and ICMPv6 (linux/in6.h: macros, unlike in.h's IPPROTO_* enum, which BTF has) */
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_ICMPV6 58
#define IPPROTO_NONE 59
#define IPPROTO_DSTOPTS 60
#define IPPROTO_MH 135

/* Ethernet (linux/if_ether.h): lengths, and the EtherTypes packet programs test */
#define ETH_ALEN 6
#define ETH_TLEN 2
#define ETH_HLEN 14
#define ETH_ZLEN 60
#define ETH_DATA_LEN 1500
#define ETH_FRAME_LEN 1514
#define ETH_FCS_LEN 4
#define ETH_MIN_MTU 68
#define ETH_MAX_MTU 0xFFFFU
#define ETH_P_802_3 0x0001
#define ETH_P_ALL 0x0003
#define ETH_P_802_2 0x0004
#define ETH_P_LOOP 0x0060
#define ETH_P_802_3_MIN 0x0600
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ETH_P_TEB 0x6558
#define ETH_P_RARP 0x8035
#define ETH_P_8021Q 0x8100
#define ETH_P_IPX 0x8137
#define ETH_P_IPV6 0x86DD
#define ETH_P_PAUSE 0x8808
#define ETH_P_SLOW 0x8809
#define ETH_P_MPLS_UC 0x8847
#define ETH_P_MPLS_MC 0x8848
#define ETH_P_PPP_DISC 0x8863
#define ETH_P_PPP_SES 0x8864
#define ETH_P_PAE 0x888E
#define ETH_P_AOE 0x88A2
#define ETH_P_8021AD 0x88A8
#define ETH_P_TIPC 0x88CA
#define ETH_P_LLDP 0x88CC
#define ETH_P_MACSEC 0x88E5
#define ETH_P_8021AH 0x88E7
#define ETH_P_1588 0x88F7
#define ETH_P_PRP 0x88FB
#define ETH_P_FCOE 0x8906
#define ETH_P_FIP 0x8914
#define ETH_P_HSR 0x892F
#define ETH_P_NSH 0x894F
#define ETH_P_LOOPBACK 0x9000
#define ETH_P_QINQ1 0x9100
#define ETH_P_QINQ2 0x9200
#define ETH_P_QINQ3 0x9300
/* 802.1Q tag control information (linux/if_vlan.h) */
#define VLAN_HLEN 4
#define VLAN_PRIO_MASK 0xe000
#define VLAN_PRIO_SHIFT 13
#define VLAN_CFI_MASK 0x1000
#define VLAN_VID_MASK 0x0fff

/* tc (linux/pkt_cls.h): what a classifier or action returns, and its handles (linux/pkt_sched.h) */
#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_ACT_RECLASSIFY 1
#define TC_ACT_SHOT 2
#define TC_ACT_PIPE 3
#define TC_ACT_STOLEN 4
#define TC_ACT_QUEUED 5
#define TC_ACT_REPEAT 6
#define TC_ACT_REDIRECT 7
#define TC_ACT_TRAP 8
#define TC_ACT_VALUE_MAX TC_ACT_TRAP
#define TC_ACT_EXT_SHIFT 28
#define TC_ACT_JUMP (1 << TC_ACT_EXT_SHIFT)
#define TC_ACT_GOTO_CHAIN (2 << TC_ACT_EXT_SHIFT)
#define TC_H_MAJ_MASK 0xFFFF0000U
#define TC_H_MIN_MASK 0x0000FFFFU
#define TC_H_MAJ(h) ((h) & TC_H_MAJ_MASK)
#define TC_H_MIN(h) ((h) & TC_H_MIN_MASK)
#define TC_H_MAKE(maj, min) (((maj) & TC_H_MAJ_MASK) | ((min) & TC_H_MIN_MASK))
#define TC_H_UNSPEC 0U
#define TC_H_ROOT 0xFFFFFFFFU
#define TC_H_INGRESS 0xFFFFFFF1U
#define TC_H_CLSACT TC_H_INGRESS
#define TC_H_MIN_INGRESS 0xFFF2U
#define TC_H_MIN_EGRESS 0xFFF3U

/* TCP (net/tcp.h): the flags byte of a header and of tcp_skb_cb, and the control block TCP keeps in an
 * skb's cb[] while the skb is TCP's (on its queues, and on receive until the socket has it) */
#define TCPHDR_FIN 0x01
#define TCPHDR_SYN 0x02
#define TCPHDR_RST 0x04
#define TCPHDR_PSH 0x08
#define TCPHDR_ACK 0x10
#define TCPHDR_URG 0x20
#define TCPHDR_ECE 0x40
#define TCPHDR_CWR 0x80
#define TCPHDR_SYN_ECN (TCPHDR_SYN | TCPHDR_ECE | TCPHDR_CWR)
#define TCP_SKB_CB(__skb) ((struct tcp_skb_cb *)&((__skb)->cb[0]))

/* files */
#define O_RDONLY 00000000
#define O_WRONLY 00000001
#define O_RDWR 00000002
#define O_CREAT 00000100
#define O_EXCL 00000200
#define O_TRUNC 00001000
#define O_APPEND 00002000
#define O_NONBLOCK 00004000
#define O_DIRECT 00040000
#define O_DIRECTORY 00200000
#define O_CLOEXEC 02000000
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFLNK 0120000
#define S_IFREG 0100000
#define S_IFBLK 0060000
#define S_IFDIR 0040000
#define S_IFCHR 0020000
#define S_IFIFO 0010000
#define S_ISREG(m) (((m) & S_IFMT) == S_IFREG)
#define S_ISDIR(m) (((m) & S_IFMT) == S_IFDIR)
#define S_ISCHR(m) (((m) & S_IFMT) == S_IFCHR)
#define S_ISBLK(m) (((m) & S_IFMT) == S_IFBLK)
#define S_ISFIFO(m) (((m) & S_IFMT) == S_IFIFO)
#define S_ISLNK(m) (((m) & S_IFMT) == S_IFLNK)
#define S_ISSOCK(m) (((m) & S_IFMT) == S_IFSOCK)
/* The direction of a transfer (a request, an iov_iter's data_source), from linux/kernel.h, which
 * nearly every kernel header pulls in; 6.1's uio.h names the same values for iov_iters. */
#define READ 0
#define WRITE 1
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 1, 0)
#define ITER_DEST READ
#define ITER_SOURCE WRITE
#endif

/* struct file's f_mode bits (fmode_t). FMODE_CREATED (the open created the file) came in 4.19 with
 * this value and FMODE_OPENED beside it; the 6.x renumbering of the flags kept all of these. Checked
 * on 6.18: a file opened with O_CREAT differs from an existing one by exactly 0x100000. */
#define FMODE_READ 0x1
#define FMODE_WRITE 0x2
#define FMODE_LSEEK 0x4
#define FMODE_PREAD 0x8
#define FMODE_PWRITE 0x10
#define FMODE_EXEC 0x20
#define FMODE_OPENED 0x80000
#define FMODE_CREATED 0x100000
#define DNAME_INLINE_LEN 40
#define DISK_NAME_LEN 32

/* tasks */
/* an enum (so in BTF) from 5.17 on; a macro before */
#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 17, 0)
#define TASK_COMM_LEN 16
#endif
#define PF_KTHREAD 0x00200000
#define TASK_RUNNING 0x0000
#define TASK_INTERRUPTIBLE 0x0001
#define TASK_UNINTERRUPTIBLE 0x0002
#define __TASK_STOPPED 0x0004
#define __TASK_TRACED 0x0008
#define EXIT_DEAD 0x0010
#define EXIT_ZOMBIE 0x0020
#define TASK_DEAD 0x0080
#define CLONE_THREAD 0x00010000
/* The options of cap_capable() and the security_capable hook (5.1 on; rbcc needs the kernel's BTF
 * in /sys/kernel/btf, which came with 5.4, so every kernel it runs on has them). Programs test
 * `#ifdef CAP_OPT_NONE` to learn whether the hook's third argument is these or the older `int audit`. */
#define CAP_OPT_NONE 0x0
#define CAP_OPT_NOAUDIT 0x2
#define CAP_OPT_INSETID 0x4
#define MAX_ERRNO 4095
#define IS_ERR_VALUE(x) ((unsigned long)(void *)(x) >= (unsigned long)-MAX_ERRNO)

/* signals (asm-generic numbering, which x86, arm64, riscv, s390 and powerpc share) */
#define SIGHUP 1
#define SIGINT 2
#define SIGQUIT 3
#define SIGILL 4
#define SIGTRAP 5
#define SIGABRT 6
#define SIGBUS 7
#define SIGFPE 8
#define SIGKILL 9
#define SIGUSR1 10
#define SIGSEGV 11
#define SIGUSR2 12
#define SIGPIPE 13
#define SIGALRM 14
#define SIGTERM 15
#define SIGSTKFLT 16
#define SIGCHLD 17
#define SIGCONT 18
#define SIGSTOP 19
#define SIGTSTP 20
#define SIGTTIN 21
#define SIGTTOU 22
#define SIGURG 23
#define SIGXCPU 24
#define SIGXFSZ 25
#define SIGVTALRM 26
#define SIGPROF 27
#define SIGWINCH 28
#define SIGIO 29
#define SIGPWR 30
#define SIGSYS 31

/* ptrace requests (linux/ptrace.h), for programs that watch the ptrace syscall */
#define PTRACE_TRACEME 0
#define PTRACE_PEEKTEXT 1
#define PTRACE_PEEKDATA 2
#define PTRACE_PEEKUSR 3
#define PTRACE_POKETEXT 4
#define PTRACE_POKEDATA 5
#define PTRACE_POKEUSR 6
#define PTRACE_CONT 7
#define PTRACE_KILL 8
#define PTRACE_SINGLESTEP 9
#define PTRACE_ATTACH 16
#define PTRACE_DETACH 17
#define PTRACE_SYSCALL 24
#define PTRACE_SETOPTIONS 0x4200
#define PTRACE_GETEVENTMSG 0x4201
#define PTRACE_GETSIGINFO 0x4202
#define PTRACE_SETSIGINFO 0x4203
#define PTRACE_GETREGSET 0x4204
#define PTRACE_SETREGSET 0x4205
#define PTRACE_SEIZE 0x4206
#define PTRACE_INTERRUPT 0x4207
#define PTRACE_LISTEN 0x4208

/* errno values (asm-generic) */
#define EPERM 1
#define ENOENT 2
#define ESRCH 3
#define EINTR 4
#define EIO 5
#define ENXIO 6
#define E2BIG 7
#define ENOEXEC 8
#define EBADF 9
#define ECHILD 10
#define EAGAIN 11
#define ENOMEM 12
#define EACCES 13
#define EFAULT 14
#define EBUSY 16
#define EEXIST 17
#define EXDEV 18
#define ENODEV 19
#define ENOTDIR 20
#define EISDIR 21
#define EINVAL 22
#define ENFILE 23
#define EMFILE 24
#define ENOTTY 25
#define EFBIG 27
#define ENOSPC 28
#define ESPIPE 29
#define EROFS 30
#define EMLINK 31
#define EPIPE 32
#define ERANGE 34
#define EDEADLK 35
#define ENAMETOOLONG 36
#define ENOSYS 38
#define ENOTEMPTY 39
#define ELOOP 40
#define ENODATA 61
#define ETIME 62
#define EOVERFLOW 75
#define ENOTSOCK 88
#define EOPNOTSUPP 95
#define EADDRINUSE 98
#define EADDRNOTAVAIL 99
#define ENETUNREACH 101
#define ECONNRESET 104
#define ENOBUFS 105
#define ETIMEDOUT 110
#define ECONNREFUSED 111
#define EHOSTUNREACH 113
#define EALREADY 114
#define EINPROGRESS 115

/* limits */
#define NAME_MAX 255
#define PATH_MAX 4096
#define IFNAMSIZ 16
#define SCM_RIGHTS 0x01
#define SOL_SOCKET 1

/* block requests: the op is the low REQ_OP_BITS of cmd_flags; the flags are bits named by the kernel's
 * own enum req_flag_bits (in BTF) */
#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1 << REQ_OP_BITS) - 1)
#define REQ_FAILFAST_DEV (1ULL << __REQ_FAILFAST_DEV)
#define REQ_SYNC (1ULL << __REQ_SYNC)
#define REQ_META (1ULL << __REQ_META)
#define REQ_PRIO (1ULL << __REQ_PRIO)
#define REQ_NOMERGE (1ULL << __REQ_NOMERGE)
#define REQ_IDLE (1ULL << __REQ_IDLE)
#define REQ_FUA (1ULL << __REQ_FUA)
#define REQ_PREFLUSH (1ULL << __REQ_PREFLUSH)
#define REQ_RAHEAD (1ULL << __REQ_RAHEAD)
#define REQ_BACKGROUND (1ULL << __REQ_BACKGROUND)

/* byte order and small helpers kernel code takes from its headers */
#define ntohs(x) bpf_ntohs(x)
#define htons(x) bpf_htons(x)
#define ntohl(x) bpf_ntohl(x)
#define htonl(x) bpf_htonl(x)
#define be16_to_cpu(x) bpf_ntohs(x)
#define be32_to_cpu(x) bpf_ntohl(x)
#define be64_to_cpu(x) bpf_be64_to_cpu(x)
#define cpu_to_be16(x) bpf_htons(x)
#define cpu_to_be32(x) bpf_htonl(x)
#ifndef min
#define min(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef max
#define max(a, b) ((a) > (b) ? (a) : (b))
#endif
#define min_t(type, a, b) ((type)(a) < (type)(b) ? (type)(a) : (type)(b))
#define max_t(type, a, b) ((type)(a) > (type)(b) ? (type)(a) : (type)(b))

/* stacks */
#define PERF_MAX_STACK_DEPTH 127

/* bitops */
#define BITS_PER_LONG 64
#define BIT(nr) (1UL << (nr))

#ifndef offsetof
#define offsetof(TYPE, MEMBER) __builtin_offsetof(TYPE, MEMBER)
#endif
#ifndef container_of
#define container_of(ptr, type, member) ((type *)((void *)(ptr) - offsetof(type, member)))
#endif
#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#endif
#ifndef unlikely
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif
#ifndef READ_ONCE
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#endif
#ifndef WRITE_ONCE
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x)) = (v)
#endif
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

/* The string.h functions kernel code calls, which bcc programs call too: clang's builtins, which it
 * expands inline for the constant sizes BPF needs (memcmp has no such builtin: kinline.h has it). */
#define memset __builtin_memset
#define memcpy __builtin_memcpy
#define memmove __builtin_memmove
#define memcmp __rbcc_memcmp

#endif
