"""bcc's batch methods (``items_lookup_batch`` and friends), mixed into every table.

Each call is one batch syscall (the core loops over the map in chunks with the
GIL released). Where the kernel has no batch command for a map type it says so
(KernelFeatureError from the core), and the method does the same work entry by
entry instead, so a script behaves the same on every map and kernel, only slower.
Arrays can't delete: as with ``del array[i]`` in bcc, a "deleted" array entry is
zeroed.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import KernelFeatureError

if TYPE_CHECKING:
    from .. import _core

__all__ = ["BatchOps", "Layout", "cdata_items", "cdata_list"]

# Where one entry's bytes are in a batch buffer: (stride, part_size, parts, part_stride). Entry i starts
# at i * stride and is `parts` pieces of `part_size` bytes, `part_stride` apart (per-CPU values: one
# piece per CPU), laid end to end in its object; the object's bytes past them stay zero.
Layout = tuple[int, int, int, int]

# Map types whose keys are listed faster by a batch read than by one get_next_key syscall per key:
# HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH.
_KEYS_BY_BATCH = frozenset({1, 5, 9, 10})


def _py_cdata_list(ctype: Any, data: bytes, layout: Layout) -> list[Any]:
    stride, part, parts, part_stride = layout
    size = ctypes.sizeof(ctype)
    objects = []
    for start in range(0, len(data) - stride + 1, stride):
        raw = b"".join(data[start + i * part_stride : start + i * part_stride + part] for i in range(parts))
        objects.append(ctype.from_buffer_copy(raw.ljust(size, b"\0")))
    return objects


def _py_cdata_items(
    key_type: Any, keys: bytes, key_layout: Layout, value_type: Any, values: bytes, value_layout: Layout
) -> list[tuple[Any, Any]]:
    pairs = zip(_py_cdata_list(key_type, keys, key_layout), _py_cdata_list(value_type, values, value_layout))
    return list(pairs)


def _makers() -> tuple[Callable[..., list[Any]], Callable[..., list[tuple[Any, Any]]]]:
    """The core's cdata_list and cdata_items, which make the objects of a batch buffer without a Python
    call per object; where the core is not built (tests of the tables alone), the same in Python."""
    try:
        from .. import _core
    except ImportError:
        return _py_cdata_list, _py_cdata_items
    return _core.cdata_list, _core.cdata_items


def cdata_list(ctype: Any, data: bytes, layout: Layout) -> list[Any]:
    """Every entry of a batch buffer as an instance of ``ctype`` (as ``from_buffer_copy`` makes one)."""
    return _makers()[0](ctype, data, layout)


def cdata_items(
    key_type: Any, keys: bytes, key_layout: Layout, value_type: Any, values: bytes, value_layout: Layout
) -> list[tuple[Any, Any]]:
    """Every entry of a batch read as a (key, value) pair of ctypes objects."""
    return _makers()[1](key_type, keys, key_layout, value_type, values, value_layout)


class BatchOps:
    """items_lookup_batch, items_lookup_and_delete_batch, items_delete_batch, items_update_batch."""

    # Provided by the table this is mixed into (rbcc._tables.base.Table): its map, types and hooks.
    map: _core.Map
    Key: Any  # a ctypes class
    Leaf: Any
    max_entries: int
    _zeroes_on_delete = False  # arrays: deleting means writing zeros

    if TYPE_CHECKING:

        def _as_key(self, key: Any) -> Any: ...
        def _present(self, value: Any) -> Any: ...
        def _presents_values(self) -> bool: ...
        def _store(self, key: bytes, leaf: Any, flags: int) -> None: ...
        def _encode_batch_value(self, leaf: Any) -> bytes: ...
        def _value_layout(self, stride: int) -> Layout: ...
        def iteritems(self) -> Iterator[tuple[Any, Any]]: ...
        def itervalues(self) -> Iterator[Any]: ...

    # -- the public methods, as bcc has them --

    def items_lookup_batch(self) -> Iterator[tuple[Any, Any]]:
        """Every (key, value) of the map, read with batch syscalls (a generator, as in bcc)."""
        yield from self._read_all()

    def items_lookup_and_delete_batch(self) -> Iterator[tuple[Any, Any]]:
        """Every (key, value) of the map, deleting them as they are read (a generator, as in bcc:
        nothing is read or deleted until it is iterated)."""
        yield from self._read_and_delete()

    def items_delete_batch(self, ct_keys: Any = None) -> None:
        """Delete the entries at ``ct_keys`` (a ctypes array of keys, or any sequence of them);
        ``None`` deletes every entry. KeyError when a key is not in the map."""
        if ct_keys is None:
            self._read_and_delete()
            return
        keys = self._batch_keys(ct_keys, "keys")
        if keys:
            self._remove(keys, missing_ok=False)

    def items_update_batch(self, ct_keys: Any, ct_values: Any) -> None:
        """Write ``ct_values[i]`` at ``ct_keys[i]`` for every i, in one syscall; both the same length,
        between 1 and max_entries."""
        keys = self._batch_keys(ct_keys, "keys")
        values = self._batch_sequence(ct_values, "values")
        if len(keys) != len(values):
            raise ValueError("keys array length != values array length")
        if keys:
            self._write(keys, list(values))

    # -- the work --

    def _batch_sequence(self, items: Any, what: str) -> Sequence[Any] | ctypes.Array[Any]:
        if isinstance(items, (str, bytes, bytearray)) or not isinstance(items, Sequence | ctypes.Array):
            raise TypeError(f"{what} must be a ctypes array (or a sequence), got {type(items).__name__}")
        if self.max_entries and len(items) > self.max_entries:
            raise ValueError(f"{len(items)} {what} is more than the map's {self.max_entries} entries")
        return items

    def _batch_keys(self, items: Any, what: str) -> list[Any]:
        return [self._as_key(key) for key in self._batch_sequence(items, what)]

    def _key_layout(self) -> Layout:
        key_size = self.map.key_size
        return (key_size, min(ctypes.sizeof(self.Key), key_size), 1, 0)

    def _value_stride(self, raw_keys: bytes, raw_values: bytes) -> int:
        count = len(raw_keys) // self.map.key_size if self.map.key_size else 0
        return len(raw_values) // count if count else 0

    def _decode_pairs(self, raw_keys: bytes, raw_values: bytes) -> list[tuple[Any, Any]]:
        stride = self._value_stride(raw_keys, raw_values)
        if not stride:
            return []
        pairs = cdata_items(self.Key, raw_keys, self._key_layout(), self.Leaf, raw_values, self._value_layout(stride))
        if self._presents_values():
            present = self._present
            return [(k, present(v)) for k, v in pairs]
        return pairs

    def _read_all(self) -> list[tuple[Any, Any]]:
        try:
            return self._decode_pairs(*self.map.lookup_batch())
        except KernelFeatureError:
            return list(self.iteritems())

    def _read_values(self) -> list[Any]:
        try:
            raw_keys, raw_values = self.map.lookup_batch()
        except KernelFeatureError:
            return list(self.itervalues())
        stride = self._value_stride(raw_keys, raw_values)
        if not stride:
            return []
        values = cdata_list(self.Leaf, raw_values, self._value_layout(stride))
        if self._presents_values():
            present = self._present
            return [present(v) for v in values]
        return values

    def _batch_keys_raw(self) -> bytes | None:
        """A hash map's keys laid end to end, read in batches (far fewer syscalls than get_next_key
        per key); None for the other maps, or where the kernel has no batch reads."""
        if self.map.map_type not in _KEYS_BY_BATCH:
            return None
        try:
            return self.map.lookup_batch()[0]
        except KernelFeatureError:
            return None

    def _list_keys(self) -> list[Any]:
        raw = self._batch_keys_raw()
        if raw is None:
            key = self.Key
            return [key.from_buffer_copy(k) for k in self.map.keys()]  # noqa: SIM118 - a map, not a dict
        return cdata_list(self.Key, raw, self._key_layout())

    def _read_and_delete(self) -> list[tuple[Any, Any]]:
        if not self._zeroes_on_delete:
            try:
                return self._decode_pairs(*self.map.lookup_and_delete_batch())
            except KernelFeatureError:
                pass  # LPM tries, fd maps, ...: read, then delete what was read
        pairs = self._read_all()
        self._remove([key for key, _ in pairs], missing_ok=True)
        return pairs

    def _remove(self, keys: list[Any], missing_ok: bool) -> None:
        if not keys:
            return
        if self._zeroes_on_delete:
            self._write(keys, [self.Leaf()] * len(keys))
            return
        try:
            self.map.delete_batch(b"".join(bytes(key) for key in keys))
            return
        except KernelFeatureError:
            pass
        except KeyError:
            if not missing_ok:
                raise
            # The program deleted one of them first; the kernel stopped there, so finish one by one.
        for key in keys:
            if not self.map.delete(bytes(key)) and not missing_ok:
                raise KeyError(key)

    def _write(self, keys: list[Any], values: list[Any]) -> None:
        try:
            raw_values = b"".join(self._encode_batch_value(value) for value in values)
            self.map.update_batch(b"".join(bytes(key) for key in keys), raw_values)
        except KernelFeatureError:
            for key, value in zip(keys, values, strict=True):
                self._store(bytes(key), value, 0)
