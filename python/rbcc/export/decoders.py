"""Label decoders: what map keys usually hold, turned into the text of a label.

Each decoder takes one key field's value (an int, the bytes of a ``char[]``, or with ``raw`` the field's
bytes as laid out in the key) and returns the label's text, or None to leave the entry out. Results are
memoized per decoder: a scrape of a 10k-entry map decodes each distinct value once, and symbols, cgroup
paths and disk names are looked up once, not per scrape. What the decoders read (the kernel's symbols,
/sys/fs/cgroup, /sys/class/block) is fixed by the map's contents, never by anything a scraper sends.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DECODERS", "Decode", "cgroup2_mount", "check_options", "make"]

_CACHE_LIMIT = 1 << 16  # distinct values kept per decoder; past it the memo starts over


@dataclass(frozen=True)
class _Kind:
    doc: str
    options: Mapping[str, tuple[type, bool]]  # option → (its type, required)
    raw: bool = False  # takes the field's bytes rather than its value
    pair: str = ""  # the option naming a second key field the decoder needs (a PID), passed as (value, other)


DECODERS: dict[str, _Kind] = {
    "int": _Kind("the number, in decimal (the default)", {}),
    "hex": _Kind("the number, in hex (0x...)", {}),
    "string": _Kind("a char[] as text, to its first NUL", {}),
    "comm": _Kind("a task's comm (char[16]) as text", {}),
    "ksym": _Kind("a kernel address as its symbol", {}),
    "usym": _Kind("a user address as its symbol in process pid_field", {"pid_field": (str, True)}, pair="pid_field"),
    "kstack": _Kind("a kernel stack id, its frames from root to leaf joined by ';'", {"stack_map": (str, True)}),
    "ustack": _Kind(
        "a user stack id of process pid_field, as kstack",
        {"stack_map": (str, True), "pid_field": (str, True)},
        pair="pid_field",
    ),
    "syscall": _Kind("a syscall number as its name", {}),
    "errno": _Kind("an errno (or a negative return) as its name, ENOENT", {}),
    "ip": _Kind("an IPv4 (4 bytes) or IPv6 (16 bytes) address, as the kernel stores it", {}, raw=True),
    "port": _Kind("a port; byte_order: host (default) or network", {"byte_order": (str, False)}),
    "cgroup": _Kind("a cgroup v2 id as its path under the cgroup mount", {}),
    "disk": _Kind("a kernel dev_t (major << 20 | minor) as the disk's name", {}),
    "map": _Kind("values: {key: text}; keys it does not list are left out", {"values": (dict, True)}),
}


def check_options(name: str, options: Mapping[str, Any]) -> tuple[str, str] | None:
    """(field, what is wrong) with decoder ``name``'s options, or None."""
    allowed = DECODERS[name].options
    for key, value in options.items():
        if key not in allowed:
            known = f" (it takes {', '.join(allowed)})" if allowed else " (it takes none)"
            return key, f"decoder {name} takes no option {key!r}{known}"
        kind = allowed[key][0]
        if not isinstance(value, kind):
            return key, f"{value!r} is not a {kind.__name__}"
    for key, (_kind, required) in allowed.items():
        if required and key not in options:
            return "decoder", f"decoder {name} needs option {key!r}"
    if name == "port" and options.get("byte_order", "host") not in ("host", "network"):
        return "byte_order", f"{options['byte_order']!r}: host or network"
    if name == "map":
        for key, text in options["values"].items():
            if not isinstance(key, (int, str)) or isinstance(key, bool) or not isinstance(text, str):
                return "values", f"{key!r}: {text!r} is not a number (or text) mapped to text"
    return None


@dataclass(frozen=True)
class Decode:
    """A label's decoder, ready: ``fn(value)`` (``fn((value, other))`` with ``pair``)."""

    fn: Callable[[Any], str | None]
    raw: bool
    pair: str  # the other key field it needs, or ""


def _memo(fn: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
    cache: dict[Any, str | None] = {}

    def decode(value: Any) -> str | None:
        try:
            return cache[value]
        except KeyError:
            pass
        except TypeError:  # unhashable (an array field): decode it each time
            return fn(value)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        text = cache[value] = fn(value)
        return text

    return decode


def make(name: str, options: Mapping[str, Any], bpf: Any) -> Decode:
    """The decoder ``name`` with ``options``, over the tables of ``bpf`` (stack maps)."""
    kind = DECODERS[name]
    pair = str(options.get(kind.pair, "")) if kind.pair else ""
    fn: Callable[[Any], str | None]
    if name == "int":
        fn = _int
    elif name == "hex":
        fn = _hex
    elif name in ("string", "comm"):
        fn = _text
    elif name == "ksym":
        fn = _ksym
    elif name == "usym":
        fn = _usym
    elif name in ("kstack", "ustack"):
        fn = _stack(bpf, str(options["stack_map"]), user=name == "ustack")
    elif name == "syscall":
        fn = _syscall
    elif name == "errno":
        fn = _errno
    elif name == "ip":
        fn = _ip
    elif name == "port":
        fn = _port_network if options.get("byte_order") == "network" else _int
    elif name == "cgroup":
        fn = _CGROUPS.path
    elif name == "disk":
        fn = _DISKS.name
    else:  # map
        fn = _static(options["values"])
    return Decode(_memo(fn), kind.raw, pair)


def _int(value: Any) -> str:
    return str(int(value)) if isinstance(value, int) else str(value)


def _hex(value: Any) -> str:
    return hex(int(value))


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):  # an array of (signed) chars, not a char[]
        value = bytes(v & 0xFF for v in value)
    if isinstance(value, bytes):
        return value.split(b"\0", 1)[0].decode("utf-8", "replace")
    return str(value)


def _ksym(value: Any) -> str:
    from rbcc import BPF

    return BPF.ksym(int(value)).decode("utf-8", "replace")


def _usym(value: Any) -> str:
    from rbcc import BPF

    addr, pid = value
    return BPF.sym(int(addr), int(pid)).decode("utf-8", "replace")


def _stack(bpf: Any, stack_map: str, *, user: bool) -> Callable[[Any], str]:
    from rbcc import BPF

    def decode(value: Any) -> str:
        stack_id, pid = value if user else (value, -1)
        stack_id = int(stack_id)
        if stack_id < 0:  # -EFAULT (no user stack, a kernel thread) or -EEXIST/-ENOMEM (the map was full)
            return f"[no stack: {errno.errorcode.get(-stack_id, stack_id)}]"
        try:
            frames = list(bpf[stack_map].walk(stack_id))
        except KeyError:
            return "[stack gone]"  # reused or removed since the key was written
        names = [BPF.sym(int(a), int(pid)) if user else BPF.ksym(int(a)) for a in frames]
        return ";".join(n.decode("utf-8", "replace") for n in reversed(names))  # folded: root first

    return decode


def _syscall(value: Any) -> str:
    from rbcc.syscall import syscall_name

    return syscall_name(int(value)).decode()


def _errno(value: Any) -> str:
    number = abs(_signed(int(value)))
    return errno.errorcode.get(number, str(number)) if number else "0"


def _signed(value: int) -> int:
    """A negative return read from an unsigned field: -2 as u32/u64 is 2**32-2 / 2**64-2."""
    for bits in (64, 32):
        if value >= 1 << (bits - 1) and value < 1 << bits:
            return value - (1 << bits)
    return value


def _ip(value: Any) -> str:
    raw = bytes(value)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if len(raw) == 16:
        v6 = ipaddress.IPv6Address(raw)
        return str(v6.ipv4_mapped or v6)
    return raw.hex()


def _port_network(value: Any) -> str:
    port = int(value) & 0xFFFF
    return str(((port & 0xFF) << 8) | (port >> 8))


def _static(values: Mapping[Any, str]) -> Callable[[Any], str | None]:
    table = {(int(k) if isinstance(k, str) and k.lstrip("-").isdigit() else k): v for k, v in values.items()}

    def decode(value: Any) -> str | None:
        if isinstance(value, bytes):
            value = _text(value)
        return table.get(value)

    return decode


class _Lookup:
    """A table read from the filesystem, read again on a miss at most once a second (a new cgroup, a
    disk attached since), so an unknown value in every scrape costs one read a second at most."""

    def __init__(self, read: Callable[[], dict[int, str]], unknown: Callable[[int], str]) -> None:
        self._read = read
        self._unknown = unknown
        self._table: dict[int, str] = {}
        self._read_at = 0.0

    def lookup(self, key: int) -> str:
        found = self._table.get(key)
        if found is None and time.monotonic() - self._read_at >= 1.0:
            self._table = self._read()
            self._read_at = time.monotonic()
            found = self._table.get(key)
        return found if found is not None else self._unknown(key)


def cgroup2_mount() -> str | None:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified beside v1's)."""
    try:
        with open("/proc/self/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) > 2 and fields[2] == "cgroup2":
                    return fields[1]
    except OSError:
        pass
    return None


def _cgroup_paths() -> dict[int, str]:
    """cgroup v2 ids (the inode numbers of their directories) → paths, / being the root."""
    paths: dict[int, str] = {}
    root = cgroup2_mount()
    for top, _dirs, _files in os.walk(root) if root else ():
        rel = os.path.relpath(top, root)
        try:
            paths[os.stat(top).st_ino] = "/" if rel == "." else "/" + rel
        except OSError:
            continue  # removed while walking
    return paths


class _Cgroups(_Lookup):
    def path(self, value: Any) -> str:
        return self.lookup(int(value))


def _disk_names() -> dict[int, str]:
    """The kernel's dev_t (major << 20 | minor, as the block tracepoints give it) → disk name."""
    names: dict[int, str] = {}
    try:
        entries = os.listdir("/sys/class/block")
    except OSError:
        return names
    for name in entries:
        try:
            with open(f"/sys/class/block/{name}/dev") as f:
                major, minor = (int(x) for x in f.read().split(":"))
        except (OSError, ValueError):
            continue
        names[(major << 20) | minor] = name
    return names


class _Disks(_Lookup):
    def name(self, value: Any) -> str:
        return self.lookup(int(value))


_CGROUPS = _Cgroups(_cgroup_paths, str)
_DISKS = _Disks(_disk_names, lambda dev: f"{dev >> 20}:{dev & 0xFFFFF}")
