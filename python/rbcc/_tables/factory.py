"""Which table ``BPF["name"]`` is: bcc's BPF_MAP_TYPE_* numbers and names, and ``table_for``, which
picks the class (bcc's) of a map's type.

The table classes live beside this module: hash tables and arrays in ``base``, the special-purpose kinds
in ``kinds``, per-CPU tables in ``percpu``, stack traces in ``stacks``, perf and ring buffers in
``events``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import BPFError
from .base import Array, CType, HashTable, LruHash, Table, TableOwner
from .events import PerfEventArray, RingBuf
from .kinds import (
    CgroupArray,
    CgroupStorage,
    CgrpStorage,
    CpuMap,
    DevMap,
    DevMapHash,
    InodeStorage,
    LpmTrie,
    MapInMapArray,
    MapInMapHash,
    ProgArray,
    QueueStack,
    SkStorage,
    SockHash,
    SockMap,
    TaskStorage,
    XskMap,
)
from .percpu import LruPerCpuHash, PerCpu, PerCpuArray, PerCpuCgroupStorage, PerCpuHash
from .stacks import StackTrace

if TYPE_CHECKING:
    from .. import _core

__all__ = ["TableLike", "get_table_type_name", "map_type_name", "table_for"]

BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_PROG_ARRAY = 3
BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4
BPF_MAP_TYPE_PERCPU_HASH = 5
BPF_MAP_TYPE_PERCPU_ARRAY = 6
BPF_MAP_TYPE_STACK_TRACE = 7
BPF_MAP_TYPE_CGROUP_ARRAY = 8
BPF_MAP_TYPE_LRU_HASH = 9
BPF_MAP_TYPE_LRU_PERCPU_HASH = 10
BPF_MAP_TYPE_LPM_TRIE = 11
BPF_MAP_TYPE_ARRAY_OF_MAPS = 12
BPF_MAP_TYPE_HASH_OF_MAPS = 13
BPF_MAP_TYPE_DEVMAP = 14
BPF_MAP_TYPE_SOCKMAP = 15
BPF_MAP_TYPE_CPUMAP = 16
BPF_MAP_TYPE_XSKMAP = 17
BPF_MAP_TYPE_SOCKHASH = 18
BPF_MAP_TYPE_CGROUP_STORAGE = 19
BPF_MAP_TYPE_REUSEPORT_SOCKARRAY = 20
BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE = 21
BPF_MAP_TYPE_QUEUE = 22
BPF_MAP_TYPE_STACK = 23
BPF_MAP_TYPE_SK_STORAGE = 24
BPF_MAP_TYPE_DEVMAP_HASH = 25
BPF_MAP_TYPE_STRUCT_OPS = 26
BPF_MAP_TYPE_RINGBUF = 27
BPF_MAP_TYPE_INODE_STORAGE = 28
BPF_MAP_TYPE_TASK_STORAGE = 29
BPF_MAP_TYPE_BLOOM_FILTER = 30
BPF_MAP_TYPE_USER_RINGBUF = 31
BPF_MAP_TYPE_CGRP_STORAGE = 32
BPF_MAP_TYPE_ARENA = 33

map_type_name: dict[int, str] = {
    value: name.removeprefix("BPF_MAP_TYPE_")
    for name, value in globals().items()
    if name.startswith("BPF_MAP_TYPE_") and isinstance(value, int)
}


def get_table_type_name(ttype: int) -> str:
    return map_type_name.get(ttype, "<unknown>")


TableLike = Table | QueueStack  # what BPF[name] returns: QueueStack is not a mapping, as in bcc

_CLASSES: dict[int, type[Table]] = {
    BPF_MAP_TYPE_HASH: HashTable,
    BPF_MAP_TYPE_ARRAY: Array,
    BPF_MAP_TYPE_PROG_ARRAY: ProgArray,
    BPF_MAP_TYPE_PERF_EVENT_ARRAY: PerfEventArray,
    BPF_MAP_TYPE_PERCPU_HASH: PerCpuHash,
    BPF_MAP_TYPE_PERCPU_ARRAY: PerCpuArray,
    BPF_MAP_TYPE_STACK_TRACE: StackTrace,
    BPF_MAP_TYPE_CGROUP_ARRAY: CgroupArray,
    BPF_MAP_TYPE_LRU_HASH: LruHash,
    BPF_MAP_TYPE_LRU_PERCPU_HASH: LruPerCpuHash,
    BPF_MAP_TYPE_LPM_TRIE: LpmTrie,
    BPF_MAP_TYPE_ARRAY_OF_MAPS: MapInMapArray,
    BPF_MAP_TYPE_HASH_OF_MAPS: MapInMapHash,
    BPF_MAP_TYPE_DEVMAP: DevMap,
    BPF_MAP_TYPE_SOCKMAP: SockMap,
    BPF_MAP_TYPE_CPUMAP: CpuMap,
    BPF_MAP_TYPE_XSKMAP: XskMap,
    BPF_MAP_TYPE_SOCKHASH: SockHash,
    BPF_MAP_TYPE_CGROUP_STORAGE: CgroupStorage,
    BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: PerCpuCgroupStorage,
    BPF_MAP_TYPE_SK_STORAGE: SkStorage,
    BPF_MAP_TYPE_DEVMAP_HASH: DevMapHash,
    BPF_MAP_TYPE_RINGBUF: RingBuf,
    BPF_MAP_TYPE_INODE_STORAGE: InodeStorage,
    BPF_MAP_TYPE_TASK_STORAGE: TaskStorage,
    BPF_MAP_TYPE_CGRP_STORAGE: CgrpStorage,
}


def table_for(
    bpf: TableOwner,
    map: _core.Map,
    name: str,
    keytype: CType | None = None,
    leaftype: CType | None = None,
    reducer: Callable[[Any, Any], Any] | None = None,
) -> TableLike:
    """The table object for ``map``, its class chosen by the map's type.

    ``keytype``/``leaftype`` override the types from BTF (bcc's ``get_table(name, keytype, leaftype)``);
    ``reducer`` folds per-CPU values and is ignored for other maps, as in bcc.
    """
    if map.map_type in (BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK):
        return QueueStack(bpf, map, name, leaftype)
    cls = _CLASSES.get(map.map_type)
    if cls is None:
        kind = get_table_type_name(map.map_type)
        raise BPFError(f"map {name!r} has type {map.map_type} ({kind}), which rbcc's tables do not support")
    if issubclass(cls, PerCpu):
        return cls(bpf, map, name, keytype, leaftype, reducer=reducer)
    return cls(bpf, map, name, keytype, leaftype)
