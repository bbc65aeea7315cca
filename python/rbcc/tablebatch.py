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
from collections.abc import Iterator, Sequence
from typing import Any

from .errors import KernelFeatureError

__all__ = ["BatchOps"]


class BatchOps:
    """items_lookup_batch, items_lookup_and_delete_batch, items_delete_batch, items_update_batch."""

    # Provided by the table this is mixed into.
    map: Any
    Key: Any
    Leaf: Any
    max_entries: int
    _zeroes_on_delete = False  # arrays: deleting means writing zeros
    # ... and the table's hooks: _as_key, _present, _store, _encode_batch_value, _decode_batch_values,
    # iteritems (see rbcc.tablebase.Table).

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

    def _batch_sequence(self, items: Any, what: str) -> Sequence[Any]:
        if isinstance(items, (str, bytes, bytearray)) or not isinstance(items, Sequence | ctypes.Array):
            raise TypeError(f"{what} must be a ctypes array (or a sequence), got {type(items).__name__}")
        if self.max_entries and len(items) > self.max_entries:
            raise ValueError(f"{len(items)} {what} is more than the map's {self.max_entries} entries")
        return items

    def _batch_keys(self, items: Any, what: str) -> list[Any]:
        return [self._as_key(key) for key in self._batch_sequence(items, what)]

    def _decode_pairs(self, raw_keys: bytes, raw_values: bytes) -> list[tuple[Any, Any]]:
        key_size = self.map.key_size
        count = len(raw_keys) // key_size if key_size else 0
        if not count:
            return []
        key = self.Key
        keys = [key.from_buffer_copy(raw_keys, i * key_size) for i in range(count)]
        values = self._decode_batch_values(raw_values, count, len(raw_values) // count)
        present = self._present
        return [(k, present(v)) for k, v in zip(keys, values, strict=True)]

    def _read_all(self) -> list[tuple[Any, Any]]:
        try:
            return self._decode_pairs(*self.map.lookup_batch())
        except KernelFeatureError:
            return list(self.iteritems())

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
