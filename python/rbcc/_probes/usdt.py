"""USDT probes (sys/sdt.h) as bcc's ``USDT`` class: find them in a binary or a process, enable them
for BPF functions, and hand them to ``BPF(usdt_contexts=[...])``, which attaches them through libbpf.

In the BPF C, ``bpf_usdt_readarg(n, ctx, &v)`` and ``bpf_usdt_readarg_p(n, ctx, buf, len)`` read the
probe's arguments, numbered from 1.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from .. import _core
from ..errors import BPFError, USDTException
from ..utils import as_str as _s
from .uprobes import file_mappings, is_shared_library, resolve_binary

Text = str | bytes


# an x86 operand of sys/sdt.h's notes: $5, %rdi, -8(%rbp), 8(%rax,%rbx,4), sym+8(%rip)
_OPERAND = re.compile(
    r"^(?:\$(?P<constant>-?(?:0x[0-9a-fA-F]+|\d+))"
    r"|%(?P<register>\w+)"
    r"|(?P<ident>[A-Za-z_.][\w.]*)?(?P<offset>[-+]?(?:0x[0-9a-fA-F]+|\d+))?"
    r"\(%(?P<base>\w+)(?:,%(?P<index>\w+)(?:,(?P<scale>\d+))?)?\))$"
)


class USDTProbeArgument:
    """One argument of one probe site, as sys/sdt.h describes it (``-4@%eax``: 4 signed bytes in eax), and
    the parts of its location as bcc names them: ``valid`` (``BCC_USDT_ARGUMENT_FLAGS`` bits) says which of
    ``constant``, ``deref_offset``, ``deref_ident``, ``base_register_name``, ``index_register_name`` and
    ``scale`` are there. ``location`` is the operand as the note has it."""

    def __init__(self, size: int, signed: bool, location: str) -> None:
        from ..libbcc import BCC_USDT_ARGUMENT_FLAGS as flags

        self.size, self.signed, self.location = size, signed, location
        self.valid = flags.NONE
        self.constant: int | None = None
        self.deref_offset: int | None = None
        self.deref_ident: bytes | None = None
        self.base_register_name: bytes | None = None
        self.index_register_name: bytes | None = None
        self.scale: int | None = None
        found = _OPERAND.match(location)
        if found is None:
            return  # another architecture's operand: its text is in `location`
        parts = found.groupdict()
        if parts["constant"] is not None:
            self.constant, self.valid = int(parts["constant"], 0), flags.CONSTANT
            return
        if parts["register"] is not None:
            self.base_register_name, self.valid = parts["register"].encode(), flags.BASE_REGISTER_NAME
            return
        self.deref_offset = int(parts["offset"] or "0", 0)
        self.base_register_name = parts["base"].encode()
        self.valid = flags.DEREF_OFFSET | flags.BASE_REGISTER_NAME
        if parts["ident"]:
            self.deref_ident = parts["ident"].encode()
            self.valid |= flags.DEREF_IDENT
        if parts["index"]:
            self.index_register_name = parts["index"].encode()
            self.valid |= flags.INDEX_REGISTER_NAME
        if parts["scale"]:
            self.scale = int(parts["scale"])
            self.valid |= flags.SCALE

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, USDTProbeArgument):
            return NotImplemented
        return (self.size, self.signed, self.location) == (other.size, other.signed, other.location)

    def __repr__(self) -> str:
        return f"USDTProbeArgument(size={self.size}, signed={self.signed}, location={self.location!r})"

    def __str__(self) -> str:
        return f"{self.size} {'signed' if self.signed else 'unsigned'} bytes @ {self.location}"


USDTArgument = USDTProbeArgument  # rbcc's earlier name


@dataclass
class USDTProbeLocation:
    """One site of a probe: where in the binary it fires, and its arguments there."""

    bin_path: bytes
    address: int
    spec: str
    # bcc's back references: the probe the site is of, and its place among the probe's sites
    probe: USDTProbe | None = field(default=None, repr=False, compare=False)
    index: int = field(default=0, compare=False)

    @property
    def num_arguments(self) -> int:
        return len(self.spec.split())

    def get_argument(self, index: int) -> USDTProbeArgument:
        # "-4@%eax": the size (negative: signed) before the @; an arg without one is a 64-bit value
        size, at, where = self.spec.split()[index].partition("@")
        if not (at and size.lstrip("-").isdigit()):
            return USDTProbeArgument(8, False, self.spec.split()[index])
        return USDTProbeArgument(abs(int(size)), size.startswith("-"), where)

    def __str__(self) -> str:
        return f"{self.bin_path.decode()} 0x{self.address:x}"


@dataclass
class USDTProbe:
    """One probe (provider:name) of one binary, with the places it fires from."""

    provider: bytes
    name: bytes
    bin_path: bytes
    semaphore: int
    locations: list[USDTProbeLocation]
    context: USDT | None = field(default=None, repr=False, compare=False)  # the USDT that found it

    @property
    def num_locations(self) -> int:
        return len(self.locations)

    @property
    def num_arguments(self) -> int:
        return self.locations[0].num_arguments if self.locations else 0

    def short_name(self) -> str:
        return f"{self.provider.decode()}:{self.name.decode()}"

    def get_location(self, index: int) -> USDTProbeLocation:
        return self.locations[index]

    def __str__(self) -> str:
        return f"{self.short_name()} [sema 0x{self.semaphore:x}]"


_CTYPES = {1: "int8_t", 2: "int16_t", 4: "int32_t", 8: "int64_t"}


class USDT:
    """The USDT probes of a binary (``path=``) or of a running process (``pid=``: its executable and the
    libraries it has mapped), and which of them are enabled for which BPF function."""

    def __init__(self, pid: int | None = None, path: Text | None = None) -> None:
        if pid is None and not path:
            raise USDTException("USDT needs a pid or a binary path")
        self.pid = pid
        self.path = resolve_binary(_s(path), pid or -1) if path else None
        self._enabled: list[tuple[str, str]] = []
        self._site_cache: list[tuple[str, str, str, int, int, str]] | None = None

    def _binaries(self) -> list[str]:
        if self.path:
            return [self.path]
        found = [os.path.realpath(f"/proc/{self.pid}/exe")]
        try:
            mappings = file_mappings(self.pid or 0)
        except OSError as e:
            raise USDTException(f"cannot read the mappings of process {self.pid}: {e}") from e
        for _, _, path in mappings:
            if path not in found and is_shared_library(path):
                found.append(path)
        return found

    def _sites(self) -> list[tuple[str, str, str, int, int, str]]:
        """(binary, provider, name, pc, semaphore, args) of every probe site."""
        if self._site_cache is None:
            sites: list[tuple[str, str, str, int, int, str]] = []
            for binary in self._binaries():
                try:
                    sites.extend((binary, *site) for site in _core.usdt_sites(binary))
                except BPFError:  # a mapped file that is not a readable 64-bit ELF has no probes
                    continue
            self._site_cache = sites
        return self._site_cache

    def _matches(self, probe: str) -> list[tuple[str, str, str]]:
        """The (binary, provider, name) triples ``probe`` ("name" or "provider:name") stands for."""
        provider, _, name = probe.rpartition(":")
        return sorted({(b, p, n) for b, p, n, *_ in self._sites() if n == name and (not provider or p == provider)})

    def enable_probe(self, probe: Text, fn_name: Text) -> None:
        probe = _s(probe)
        if not self._matches(probe):
            where = self.path or f"process {self.pid}"
            raise USDTException(f"failed to enable probe '{probe}': {where} has no such USDT probe")
        self._enabled.append((probe, _s(fn_name)))

    def enable_probe_or_bail(self, probe: Text, fn_name: Text) -> None:
        try:
            self.enable_probe(probe, fn_name)
        except USDTException as e:
            print(f"Error attaching USDT probes: {e}", file=sys.stderr)
            sys.exit(1)

    def get_context(self) -> USDT:
        return self

    @property
    def context(self) -> USDT:
        """bcc's handle of its C context; here the USDT object itself (what ``usdt_contexts=`` takes)."""
        return self

    def get_text(self) -> str:
        """bcc generates C to read each probe's arguments; libbpf's USDT support does that here."""
        return ""

    def enumerate_probes(self) -> list[USDTProbe]:
        grouped: dict[tuple[str, str, str], list[tuple[int, int, str]]] = {}
        for binary, provider, name, pc, semaphore, args in self._sites():
            grouped.setdefault((binary, provider, name), []).append((pc, semaphore, args))
        probes = []
        for (b, p, n), locs in sorted(grouped.items()):
            sites = [USDTProbeLocation(b.encode(), pc, a, index=i) for i, (pc, _, a) in enumerate(locs)]
            probe = USDTProbe(p.encode(), n.encode(), b.encode(), locs[0][1], sites, self)
            for site in sites:
                site.probe = probe
            probes.append(probe)
        return probes

    def enumerate_active_probes(self) -> list[tuple[bytes, bytes, int]]:
        """(binary, BPF function, address) of every site of every enabled probe."""
        out = []
        for probe, fn in self._enabled:
            for binary, provider, name in self._matches(probe):
                for b, p, n, pc, *_ in self._sites():
                    if (b, p, n) == (binary, provider, name):
                        out.append((binary.encode(), fn.encode(), pc))
        return out

    def get_probe_arg_ctype(self, probe_name: Text, arg_index: int) -> str:
        for binary, _, name, pc, _, args in self._sites():
            location = USDTProbeLocation(binary.encode(), pc, args)
            if name == _s(probe_name) and 0 <= arg_index < location.num_arguments:
                arg = location.get_argument(arg_index)
                ctype = _CTYPES.get(arg.size, "int64_t")
                return ctype if arg.signed else "u" + ctype
        raise USDTException(f"no argument {arg_index} of USDT probe {_s(probe_name)}")

    def attach_to(self, bpf: Any, ignore_pid: bool = False) -> None:
        """Attach every enabled probe to its BPF function in ``bpf`` (what ``BPF(usdt_contexts=)`` does)."""
        pid = -1 if ignore_pid or self.pid is None else self.pid
        for probe, fn in self._enabled:
            for binary, provider, name in self._matches(probe):
                bpf._attach_usdt(fn, pid, binary, provider, name)

    attach_uprobes = attach_to  # bcc's name
