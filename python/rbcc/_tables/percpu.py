"""Per-CPU tables: a value is one copy per possible CPU (``sLeaf * total_cpu``), as in bcc, optionally
folded into one by a reducer."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from functools import reduce
from typing import TYPE_CHECKING, Any

from .base import ArrayBase, CType, HashTable, Table, TableOwner, decode
from .batch import Layout
from .kinds import CgroupStorage

if TYPE_CHECKING:
    from .. import _core

__all__ = ["LruPerCpuHash", "PerCpu", "PerCpuArray", "PerCpuCgroupStorage", "PerCpuHash"]


def _num_possible_cpus() -> int:
    from .. import _core  # on first use: the tables import without the compiled extension

    return _core.num_possible_cpus()


class PerCpu(Table):
    """Per-CPU maps: a value is ``sLeaf * total_cpu``, one element per possible CPU, as in bcc."""

    def __init__(
        self,
        bpf: TableOwner,
        map: _core.Map,
        name: str,
        keytype: CType | None = None,
        leaftype: CType | None = None,
        reducer: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        super().__init__(bpf, map, name, keytype, leaftype)
        self.reducer = reducer
        self.sLeaf: CType = self.Leaf
        self.total_cpu = _num_possible_cpus()
        # bytes past 8-byte alignment of one CPU's copy, as bcc keeps it; the copies are read apart
        # here (each from its own aligned slot), so a 4-byte value stays 4 bytes in Leaf
        self.alignment = ctypes.sizeof(self.sLeaf) % 8
        self.Leaf = self.sLeaf * self.total_cpu

    def _fetch(self, key: bytes) -> Any | None:
        per_cpu = self.map.lookup_percpu(key)
        return None if per_cpu is None else self._join_cpus(per_cpu)

    def _per_cpu_bytes(self, leaf: Any) -> list[bytes]:
        raw = bytes(self._as_leaf(leaf))
        size = ctypes.sizeof(self.sLeaf)
        return [raw[i * size : (i + 1) * size] for i in range(self.total_cpu)]

    def _store(self, key: bytes, leaf: Any, flags: int) -> None:
        self.map.update_percpu(key, self._per_cpu_bytes(leaf), flags)

    def _encode_batch_value(self, leaf: Any) -> bytes:
        # In a batch buffer every CPU's copy starts 8-byte aligned.
        stride = -(-ctypes.sizeof(self.sLeaf) // 8) * 8
        return b"".join(raw.ljust(stride, b"\0") for raw in self._per_cpu_bytes(leaf))

    def _value_layout(self, stride: int) -> Layout:
        # every CPU's copy starts 8-byte aligned in the buffer; the Leaf array has them end to end
        per_cpu = stride // self.total_cpu
        return (stride, min(ctypes.sizeof(self.sLeaf), per_cpu), self.total_cpu, per_cpu)

    def _presents_values(self) -> bool:
        return self.reducer is not None

    def _join_cpus(self, per_cpu: list[bytes]) -> Any:
        size = ctypes.sizeof(self.sLeaf)
        # The kernel rounds each CPU's copy up to 8 bytes; only the value's own bytes matter.
        return decode(b"".join(raw[:size].ljust(size, b"\0") for raw in per_cpu[: self.total_cpu]), self.Leaf)

    def _present(self, value: Any) -> Any:
        return reduce(self.reducer, value) if self.reducer is not None else value

    def getvalue(self, key: Any) -> Any:
        """The per-CPU array at ``key``, never reduced."""
        value = self._fetch(bytes(self._as_key(key)))
        if value is None:
            raise KeyError(key)
        return value

    def _check_scalar(self, what: str) -> None:
        if issubclass(self.sLeaf, (ctypes.Structure, ctypes.Union)):
            raise IndexError(f"Leaf must be an integer type for default {what} functions")

    def sum(self, key: Any) -> Any:
        self._check_scalar("sum")
        return self.sLeaf(sum(self.getvalue(key)))

    def max(self, key: Any) -> Any:
        self._check_scalar("max")
        return self.sLeaf(max(self.getvalue(key)))

    def average(self, key: Any) -> float:
        return float(self.sum(key).value) / self.total_cpu


class PerCpuHash(PerCpu, HashTable):
    pass


class LruPerCpuHash(PerCpuHash):
    pass


class PerCpuArray(PerCpu, ArrayBase):
    _zeroes_on_delete = True

    def __delitem__(self, key: Any) -> None:
        self.clearitem(key)


class PerCpuCgroupStorage(PerCpu, CgroupStorage):
    """CgroupStorage with one value per CPU."""
