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
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_HLEN 14
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_RAW 3

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

#endif
