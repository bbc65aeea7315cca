/* Included ahead of every rbcc program, both when libclang parses the bcc dialect
 * (__RBCC_PARSE__ defined) and when clang compiles the rewritten C. */
#ifndef __RBCC_PRELUDE_H
#define __RBCC_PRELUDE_H
#include "kconfig.h"
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "rbcc/kdefs.h"
#include "rbcc/kinline.h"
#include "rbcc/helpers.h"
#include "rbcc/packet.h"
#endif
