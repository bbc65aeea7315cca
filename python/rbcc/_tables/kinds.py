"""Tables of the special-purpose map kinds: fd arrays, LPM tries, maps of maps, XDP redirect maps,
socket maps, queues and stacks, and local storage.

Class names are bcc's where bcc has the kind (ProgArray, CgroupArray, LpmTrie,
MapInMapArray, MapInMapHash, DevMap, CpuMap, XskMap, QueueStack), so
``isinstance`` checks in bcc scripts keep working; the rest follow the same style.
What the kernel lets user space do differs per kind; where it refuses something,
the table says so in a BPFError instead of passing on a bare errno.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

from ..errors import BPFError
from .base import ArrayBase, HashTable, MapObject, Table, coerce, decode

__all__ = [
    "CgroupArray",
    "CgroupStorage",
    "CgrpStorage",
    "CpuMap",
    "DevMap",
    "DevMapHash",
    "InodeStorage",
    "LpmTrie",
    "MapInMapArray",
    "MapInMapHash",
    "ProgArray",
    "QueueStack",
    "SkStorage",
    "SockHash",
    "SockMap",
    "TaskStorage",
    "XskMap",
]


def _fd_of(obj: Any) -> Any:
    """The fd of anything with ``fileno()`` (socket, file, ...); an fd or a ctypes value as it is."""
    fileno = getattr(obj, "fileno", None)
    return int(fileno()) if callable(fileno) else obj


class ProgArray(ArrayBase):
    def _as_leaf(self, leaf: Any) -> Any:
        # bcc lets a loaded function object stand for its program fd.
        if not isinstance(leaf, int) and hasattr(leaf, "fd"):
            leaf = leaf.fd
        return super()._as_leaf(leaf)


class CgroupArray(ArrayBase):
    def __setitem__(self, key: Any, leaf: Any) -> None:
        if isinstance(leaf, str):
            fd = os.open(leaf, os.O_RDONLY | os.O_CLOEXEC)
            try:
                super().__setitem__(key, fd)
            finally:
                os.close(fd)
        elif isinstance(leaf, int):
            super().__setitem__(key, leaf)
        else:
            raise BPFError("Cgroup array key must be either FD or cgroup path")


class LpmTrie(Table):
    """Longest-prefix-match trie: a key is ``{u32 prefixlen; data}``; a lookup finds the longest
    stored prefix covering the key's first ``prefixlen`` bits.

    Besides a Key instance, a key can be given as ``(prefixlen, data)`` with data as bytes, an IP
    address (``"10.0.0.0"``, ``ipaddress.ip_address(...)``) or a sequence of byte values.
    """

    def _as_key(self, key: Any) -> Any:
        if isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], int):
            return self._prefix_key(*key)
        return super()._as_key(key)

    def _prefix_key(self, prefixlen: int, data: Any) -> Any:
        if isinstance(data, str):
            data = ipaddress.ip_address(data)
        if isinstance(data, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            data = data.packed
        raw = bytes(data)
        room = ctypes.sizeof(self.Key) - 4  # the kernel's bpf_lpm_trie_key: a u32 prefixlen, then data
        if len(raw) > room:
            raise ValueError(f"LPM key data of {len(raw)} bytes does not fit the key's {room}")
        if not 0 <= prefixlen <= 8 * room:
            raise ValueError(f"prefixlen {prefixlen} is outside 0..{8 * room}")
        return self.Key.from_buffer_copy(prefixlen.to_bytes(4, "little") + raw.ljust(room, b"\0"))

    def __len__(self) -> int:
        # As in bcc: the kernel keeps no count, and walking the trie for one is left to the caller.
        raise NotImplementedError

    def __bool__(self) -> bool:
        return True  # not len(): a trie is a table, whatever it holds


class MapInMapArray(ArrayBase):
    """ARRAY_OF_MAPS: a slot is set to another table (its map's fd goes in), reads back as a map id."""

    def _as_leaf(self, leaf: Any) -> Any:
        return super()._as_leaf(_inner_fd(leaf))


class MapInMapHash(HashTable):
    """HASH_OF_MAPS: a value is set to another table (its map's fd goes in), reads back as a map id."""

    def _as_leaf(self, leaf: Any) -> Any:
        return super()._as_leaf(_inner_fd(leaf))


def _inner_fd(leaf: Any) -> Any:
    for attr in ("map_fd", "fd"):  # a table, or a _core.Map
        fd = getattr(leaf, attr, None)
        if isinstance(fd, int):
            return fd
    return leaf


class DevMap(ArrayBase):
    """XDP redirect targets by index: a value is an ifindex (or an interface name, looked up here),
    or a ``struct bpf_devmap_val``. Empty slots read as absent."""

    def _as_leaf(self, leaf: Any) -> Any:
        return super()._as_leaf(_ifindex(leaf))


class DevMapHash(HashTable):
    """DEVMAP_HASH: DevMap keyed by any u32 instead of an index."""

    def _as_leaf(self, leaf: Any) -> Any:
        return super()._as_leaf(_ifindex(leaf))


def _ifindex(leaf: Any) -> Any:
    return socket.if_nametoindex(leaf) if isinstance(leaf, str) else leaf


class CpuMap(ArrayBase):
    """XDP redirect to CPUs: the key is a CPU, the value its queue size (or ``struct bpf_cpumap_val``)."""


class XskMap(ArrayBase):
    """AF_XDP sockets by queue index: a slot is set to a bound AF_XDP socket (or its fd).
    The kernel never hands sockets back, so the slots can be written and deleted but not read."""

    def _as_leaf(self, leaf: Any) -> Any:
        return super()._as_leaf(_fd_of(leaf))

    def _fetch(self, key: bytes) -> Any | None:
        raise BPFError(f"{self._name!r} is an XSKMAP: the kernel does not let user space read its sockets back")


class SockMap(ArrayBase):
    """Sockets by index for sk_msg/sk_skb redirects: a slot is set to a socket (or its fd); with an
    8-byte value it reads back as the socket's cookie (SO_COOKIE)."""

    def _as_leaf(self, leaf: Any) -> Any:
        return super()._as_leaf(_fd_of(leaf))


class SockHash(HashTable):
    """SockMap keyed by any key type."""

    def _as_leaf(self, leaf: Any) -> Any:
        return super()._as_leaf(_fd_of(leaf))


class _FdKeyedStorage(Table):
    """Local storage the kernel keys by an object (socket, inode, task, cgroup) that user space
    names with an fd. The kernel can't list such a map, so it has no keys, length or items here."""

    _owner = "object"

    def _as_key(self, key: Any) -> Any:
        return coerce(_fd_of(key), self.Key, "key")

    def _unlisted(self) -> BPFError:
        return BPFError(
            f"{self._name!r} is {self._owner} local storage: the kernel can't list its entries; "
            f"look one up by its {self._owner}'s fd"
        )

    def __iter__(self) -> Iterator[Any]:
        raise self._unlisted()

    def __len__(self) -> int:
        raise self._unlisted()

    def __bool__(self) -> bool:
        return True


class SkStorage(_FdKeyedStorage):
    """Per-socket storage: the key is a socket (or its fd)."""

    _owner = "socket"


class InodeStorage(_FdKeyedStorage):
    """Per-inode storage: the key is an open file (or its fd) on that inode."""

    _owner = "inode"


class TaskStorage(_FdKeyedStorage):
    """Per-task storage: the key is a pidfd (``os.pidfd_open(pid)``); the ``*_pid`` methods open one."""

    _owner = "task"

    def _with_pidfd(self, pid: int, fn: Any) -> Any:
        fd = os.pidfd_open(pid)
        try:
            return fn(fd)
        finally:
            os.close(fd)

    def lookup_pid(self, pid: int) -> Any | None:
        """The value stored for process ``pid``, or None."""
        return self._with_pidfd(pid, self.lookup)

    def update_pid(self, pid: int, leaf: Any, flags: int = 0) -> None:
        self._with_pidfd(pid, lambda fd: self.update(fd, leaf, flags))

    def delete_pid(self, pid: int) -> None:
        """Remove the value stored for ``pid``; KeyError when there is none."""
        self._with_pidfd(pid, self.__delitem__)


class CgrpStorage(_FdKeyedStorage):
    """Per-cgroup storage (BPF_MAP_TYPE_CGRP_STORAGE): the key is an open cgroup directory's fd."""

    _owner = "cgroup"


class CgroupStorage(Table):
    """The older cgroup storage (BPF_MAP_TYPE_CGROUP_STORAGE): one value per (cgroup, attach type)
    a program using it is attached to. Entries come and go with those attachments: user space reads
    and rewrites them, but can neither add nor delete one."""

    def _as_key(self, key: Any) -> Any:
        # A cgroup path stands for its inode number, the key's first field.
        if isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str):
            key = (os.stat(key[0]).st_ino, key[1])
        elif isinstance(key, str):
            key = os.stat(key).st_ino
        if isinstance(key, tuple) and issubclass(self.Key, ctypes.Structure):
            return self.Key(*key)
        return super()._as_key(key)

    def __delitem__(self, key: Any) -> None:
        raise BPFError(f"{self._name!r} is cgroup storage: its entries live as long as the program's attachment")


class QueueStack(MapObject):
    """BPF_MAP_TYPE_QUEUE (FIFO) and BPF_MAP_TYPE_STACK (LIFO): values without keys.

    As in bcc this is not a mapping: it has push/pop/peek and values, no keys, no length.
    """

    # Flag for push: a full queue/stack drops its oldest value to make room (the kernel's BPF_EXIST).
    BPF_EXIST = 2
    BPF_F_EXIST = BPF_EXIST

    def push(self, leaf: Any, flags: int = 0) -> None:
        """Add ``leaf``; BPFError when full, unless ``flags`` is ``QueueStack.BPF_EXIST``."""
        self.map.push(bytes(self._as_leaf(leaf)), flags)

    def pop(self) -> Any:
        """Remove and return the next value (the oldest for a queue, the newest for a stack);
        KeyError when empty."""
        raw = self.map.pop()
        if raw is None:
            raise KeyError("Could not pop from table")
        return decode(raw, self.Leaf)

    def peek(self) -> Any:
        """The value pop would return, left in place; KeyError when empty."""
        raw = self.map.peek()
        if raw is None:
            raise KeyError("Could not peek table")
        return decode(raw, self.Leaf)

    def itervalues(self) -> Iterator[Any]:
        """Pop values until empty (at most max_entries, so a busy producer can't keep it going)."""
        for _ in range(self.max_entries):
            try:
                yield self.pop()
            except KeyError:
                return

    def values(self) -> list[Any]:
        return list(self.itervalues())

    def __bool__(self) -> bool:
        return True

    def _keyless(self, what: str) -> TypeError:
        return TypeError(f"{self._name!r} is a queue/stack: it has no keys, so no {what}; use push/pop/peek/values")

    def __len__(self) -> int:
        raise self._keyless("length")

    def __iter__(self) -> Iterator[Any]:
        raise self._keyless("iteration over keys")

    def __getitem__(self, key: Any) -> Any:
        raise self._keyless("item access")

    def __setitem__(self, key: Any, leaf: Any) -> None:
        raise self._keyless("item assignment")

    def __delitem__(self, key: Any) -> None:
        raise self._keyless("item deletion")

    def __contains__(self, key: object) -> bool:
        raise self._keyless("membership test")
