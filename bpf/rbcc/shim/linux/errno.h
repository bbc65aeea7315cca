/* libbpf's usdt.bpf.h includes this; the errno values themselves are in rbcc/kdefs.h (no kernel headers). */
#include "rbcc/kdefs.h"
