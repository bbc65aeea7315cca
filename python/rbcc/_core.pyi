"""Typed surface of the Rust core (rbcc._core). The Python API in rbcc wraps these.

Failures raise rbcc.errors' classes with their fields filled in (CompileError.diagnostics,
VerifierError.log and .insn, AttachError.target, KernelFeatureError.feature and .alternative),
PermissionError for missing privileges, ValueError for a refused argument, KeyError for a missing key."""

from collections.abc import Callable
from typing import Any, final

# A type from a BPF object's BTF, as plain data (see rbcc.types for the ctypes built from it).
# kind is one of: "int", "enum", "float", "ptr", "void", "array", "struct", "union".
#   int/enum:  {"kind", "name", "size", "signed"}   (name is the C name: "char", "u32", "unsigned int", ...)
#   float:     {"kind", "name", "size"}
#   ptr/void:  {"kind", "size"}                    (ptr size is 8)
#   array:     {"kind", "elem": TypeDesc, "len"}
#   struct/union: {"kind", "name", "size", "members": [{"name", "offset", "bits", "bit_offset", "type"}]}
#      offset is in bytes; bits is 0 for a normal member, else the bitfield width,
#      with bit_offset its offset in bits from the start of the struct.
__all__ = [
    "Compiled",
    "toolchain",
    "compile",
    "Object",
    "Link",
    "Map",
    "PerfBuffer",
    "RingBuffer",
    "cdata_list",
    "cdata_items",
    "tracefs",
    "has_kprobes",
    "has_kprobe_multi",
    "has_fentry",
    "has_lsm",
    "kernel_struct_has_field",
    "kernel_enum_has_val",
    "kernel_enum",
    "num_possible_cpus",
    "perf_event_open_raw",
    "perf_event_open",
    "enable_stats",
    "loaded_programs",
    "prog_full_name",
    "ksym",
    "usym",
    "usym_inlined",
    "user_module",
    "usymname",
    "symbol_file_offset",
    "ksymname",
    "add_build_id_module",
    "build_id_sym",
    "elf_functions",
    "usdt_sites",
    "xdp_attach",
    "xdp_detach",
    "xdp_prog_id",
    "raw_socket",
    "prog_attach",
    "prog_detach",
    "flamegraph_svg",
    "flamegraph_palettes",
]

TypeDesc = dict[str, Any]  # noqa: UP040

@final
class Compiled:
    @property
    def object(self) -> bytes: ...
    @property
    def rewritten(self) -> str: ...
    @property
    def cache_hit(self) -> bool: ...

def compile(text: str, cflags: list[str], filename: str) -> Compiled:
    """Rewrite bcc-dialect C and build a BPF object, or fetch it from the cache."""

def toolchain() -> tuple[str | None, int | None, str | None, int | None, str | None, list[int]]:
    """(clang, its LLVM version, libclang, its version, why the pair is refused or None, the supported LLVM
    versions), found as a compile finds them."""

@final
class Link:
    @property
    def attached(self) -> bool: ...
    def detach(self) -> None: ...

class Map:
    @property
    def name(self) -> str: ...
    @property
    def map_type(self) -> int: ...  # BPF_MAP_TYPE_* number
    @property
    def key_size(self) -> int: ...
    @property
    def value_size(self) -> int: ...
    @property
    def max_entries(self) -> int: ...
    @property
    def fd(self) -> int: ...
    @property
    def flags(self) -> int: ...  # as the kernel created the map: BPF_F_NO_PREALLOC, ...
    @property
    def id(self) -> int: ...  # the kernel's map id
    def key_type(self) -> TypeDesc | None: ...
    def value_type(self) -> TypeDesc | None: ...
    def lookup(self, key: bytes) -> bytes | None: ...
    def lookup_percpu(self, key: bytes) -> list[bytes] | None: ...
    def update(self, key: bytes, value: bytes, flags: int = 0) -> None: ...
    def update_percpu(self, key: bytes, values: list[bytes], flags: int = 0) -> None: ...
    def delete(self, key: bytes) -> bool: ...  # False when the key was not there
    def keys(self) -> list[bytes]: ...
    def next_key(self, key: bytes | None = None) -> bytes | None: ...  # the first with None; None at the end
    # Queues and stacks (no key): push raises when full unless flags is BPF_EXIST (2);
    # pop/peek return None when empty.
    def push(self, value: bytes, flags: int = 0) -> None: ...
    def pop(self) -> bytes | None: ...
    def peek(self) -> bytes | None: ...
    # Batch operations (GIL released). Entries are laid end to end: keys key_size apart, values
    # batch_value_size apart (per-CPU maps: every CPU's copy, each 8-byte aligned). A map type the
    # kernel has no batch command for raises rbcc.errors.KernelFeatureError.
    @property
    def batch_value_size(self) -> int: ...
    def lookup_batch(self) -> tuple[bytes, bytes]: ...  # (keys, values) of every entry
    def lookup_and_delete_batch(self) -> tuple[bytes, bytes]: ...
    def update_batch(self, keys: bytes, values: bytes, flags: int = 0) -> None: ...
    def delete_batch(self, keys: bytes) -> None: ...  # KeyError at the first key not in the map

@final
class Object:
    # log_level 1/2 (bcc's DEBUG_BPF/DEBUG_BPF_REGISTER_STATE): the verifier logs every program loaded;
    # those logs, and a rejected program's, go to sys.stderr unless print_log is False
    def __new__(cls, obj: bytes, name: str, log_level: int = 0, print_log: bool = True) -> Object: ...
    print_log: bool
    def programs(self) -> list[tuple[str, str]]: ...  # (function name, ELF section)
    def map_names(self) -> list[str]: ...
    def map(self, name: str) -> Map: ...
    def event_type(self, map_name: str) -> TypeDesc | None: ...
    def prog_fd(self, prog: str) -> int: ...
    # load `prog` as program type `prog_type` (expected attach type, device bound to): its fd
    def load_func(
        self, prog: str, prog_type: int, attach_type: int | None = None, device: str | None = None
    ) -> int: ...
    # instructions as loaded (8 bytes each): of load_func's program with these arguments, else the section's type
    def func_insns(
        self, prog: str, prog_type: int | None = None, attach_type: int | None = None, device: str | None = None
    ) -> bytes: ...
    def attach_kprobe(self, prog: str, func: str, retprobe: bool) -> Link: ...
    # one kprobe multi link on every function (has_kprobe_multi()), the function loaded for that link
    def attach_kprobe_multi(self, prog: str, funcs: list[str], retprobe: bool) -> Link: ...
    def attach_btf(self, prog: str) -> Link: ...  # fentry/fexit/LSM, the target from its section
    def attach_usdt(self, prog: str, pid: int, path: str, provider: str, name: str) -> Link: ...
    def iter_fd(self, prog: str, map: str | None = None) -> int: ...  # a BPF_ITER read fd, owned by the caller
    def attach_tracepoint(self, prog: str, category: str, name: str) -> Link: ...
    def attach_raw_tracepoint(self, prog: str, name: str) -> Link: ...
    def attach_uprobe(
        self, prog: str, retprobe: bool, pid: int, path: str, offset: int, func_name: str | None = None
    ) -> Link: ...
    def attach_perf_event(
        self,
        prog: str,
        ev_type: int,
        ev_config: int,
        sample_period: int,
        sample_freq: int,
        pid: int,
        cpu: int,
        group_fd: int,
    ) -> Link: ...
    # attr: a whole struct perf_event_attr (bytes(Perf.perf_event_attr())); cookie: bpf_get_attach_cookie()
    def attach_perf_event_raw(
        self, prog: str, attr: bytes, pid: int, cpu: int, group_fd: int, cookie: int = 0
    ) -> Link: ...
    # (first instruction, file, line, column, text) of each source line of func_insns' instructions
    def func_lines(
        self, prog: str, prog_type: int | None = None, attach_type: int | None = None, device: str | None = None
    ) -> list[tuple[int, str, int, int, str]]: ...

class PerfBuffer:
    def __new__(
        cls,
        map: Map,
        # per record, during the drain: (cpu, address, size), the address valid during the call;
        # with record_size: (records) once per drain, packed at that stride
        callback: Callable[[int, int, int], Any] | Callable[[bytes], Any],
        lost_callback: Callable[[int, int], None] | None = None,  # (cpu, lost count)
        page_cnt: int = 8,
        record_size: int | None = None,
        wakeup_events: int = 1,  # records of one CPU before a poller wakes
        # (callback, exception) for an Exception a per-record callback raised; what it raises ends the
        # poll, as do SystemExit and KeyboardInterrupt (the records after them wait for the next poll)
        on_error: Callable[[Any, BaseException], None] | None = None,
    ) -> PerfBuffer: ...
    def poll(self, timeout_ms: int = -1) -> int: ...
    def consume(self) -> int: ...
    def fileno(self) -> int: ...

@final
class RingBuffer:
    def __new__(cls) -> RingBuffer: ...
    def add(
        self,
        map: Map,
        # per record, during the drain: (ctx, address, size), the address valid during the call; a
        # negative int returned ends the drain (as in libbpf); with record_size: (records) once per drain
        callback: Callable[[Any, int, int], Any] | Callable[[bytes], Any],
        record_size: int | None = None,
        ctx: Any = None,
        on_error: Callable[[Any, BaseException], None] | None = None,  # as PerfBuffer's
    ) -> None: ...
    def poll(self, timeout_ms: int = -1) -> int: ...
    def consume(self) -> int: ...

# symbols (src/symbolize/): (name, offset into the symbol, module), or None where no symbol covers the address
def ksym(addr: int, module: bool = False) -> tuple[str, int, str] | None: ...  # module "" unless asked
def ksymname(name: str) -> int | None: ...  # address from /proc/kallsyms
def usym(pid: int, addr: int, demangle: bool = True) -> tuple[str, int, str] | None: ...
def usym_inlined(pid: int, addr: int) -> list[str]: ...  # functions inlined at addr, outermost first
def user_module(pid: int, addr: int) -> tuple[str, int] | None: ...  # (file mapped at addr, offset in it)
def usymname(pid: int, module: str, name: str) -> int | None: ...  # address of module's symbol in pid
def symbol_file_offset(path: str, name: str) -> int | None: ...  # uprobe offset, debug files included
def add_build_id_module(path: str) -> bool: ...  # registered by its build id (False: it has none)
def build_id_sym(build_id: bytes, offset: int) -> tuple[str, int, str] | None: ...  # a build-id stack frame
def usdt_sites(path: str) -> list[tuple[str, str, int, int, str]]: ...  # provider, name, pc, semaphore, args
def elf_functions(path: str) -> list[tuple[str, int, int]]: ...  # (name, address, file offset)
def tracefs() -> str: ...  # tracefs mount point, mounting it when missing
def has_kprobes() -> bool: ...
def has_kprobe_multi() -> bool: ...  # kprobe multi links (one link, many functions), probed
def has_fentry() -> bool: ...
def has_lsm() -> bool: ...  # BPF LSM programs load and attach here, probed
def kernel_struct_has_field(name: str, field: str) -> bool: ...
def kernel_enum_has_val(name: str, value: str) -> bool: ...  # fentry/fexit load and attach here (probed)
def num_possible_cpus() -> int: ...

# A batch buffer's entries as ctypes objects, each made as Type.from_buffer_copy makes one. layout is
# (stride, part_size, parts, part_stride): entry i starts at i * stride and is `parts` pieces of
# `part_size` bytes, part_stride apart (per-CPU values), laid end to end in the object.
def cdata_list(ctype: type, data: bytes, layout: tuple[int, int, int, int]) -> list[Any]: ...
def cdata_items(
    key_type: type,
    keys: bytes,
    key_layout: tuple[int, int, int, int],
    value_type: type,
    values: bytes,
    value_layout: tuple[int, int, int, int],
) -> list[tuple[Any, Any]]: ...
def xdp_attach(dev: str, prog_fd: int, flags: int) -> None: ...
def xdp_detach(dev: str, flags: int, expected_fd: int | None = None) -> bool: ...  # removed?
def xdp_prog_id(dev: str, flags: int) -> int: ...  # 0: no XDP program in that mode
def raw_socket(dev: str, prog_fd: int) -> int: ...  # AF_PACKET socket fd, the filter attached
def prog_attach(prog_fd: int, target_fd: int, attach_type: int, flags: int) -> None: ...
def prog_detach(prog_fd: int, target_fd: int, attach_type: int) -> None: ...

# a perf event from a whole struct perf_event_attr (bytes(Perf.perf_event_attr(...))): its fd
def perf_event_open_raw(attr: bytes, pid: int, cpu: int, group_fd: int) -> int: ...
def kernel_enum(name: str) -> list[tuple[str, int]]: ...  # the kernel's enum `name` from its BTF: (name, value)
def perf_event_open(ev_type: int, ev_config: int, pid: int = -1, cpu: int = -1) -> int: ...  # counting event fd
def enable_stats() -> int: ...  # BPF_ENABLE_STATS: programs' run statistics on while this fd (the caller's) is open
def loaded_programs() -> list[
    tuple[int, str, str, int, int]
]: ...  # every loaded program: id, type, name, run_time_ns, run_cnt
def prog_full_name(id: int) -> str | None: ...  # a program's whole name from its BTF (info keeps 15 chars)
def flamegraph_svg(
    lines: list[str],
    *,
    title: str = "Flame Graph",
    subtitle: str | None = None,
    palette: str = "hot",
    count_name: str = "samples",
    width: int | None = None,
    inverted: bool = False,
    min_width: float = 0.1,
    notes: str = "",
) -> bytes: ...  # inferno's SVG of folded stack lines
def flamegraph_palettes() -> list[str]: ...
