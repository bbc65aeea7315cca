"""numpy views of maps and events: a table's keys and values, and batches of event records, as
structured arrays read straight from the core's buffers (one batch syscall for a map, one bytes object
per drain for events), without a Python object per entry.

numpy is imported when one of these is first used, so ``import rbcc`` and the tools stay small.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

from ..errors import BPFError, KernelFeatureError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import numpy as np

    from .. import _core

__all__ = ["ArrayOps", "dtype_of", "records"]

CType = Any


def dtype_of(ctype: CType) -> np.dtype[Any]:
    """The numpy dtype laid out exactly as ``ctype``: same size, same field offsets. ``char`` arrays
    become byte strings (``S<n>``), pointers unsigned 64-bit integers, padding is left out. A bit-field
    has no numpy form: BPFError, naming it."""
    import numpy as np

    if isinstance(ctype, type) and issubclass(ctype, ctypes.Array):
        element: CType = ctype._type_
        if element is ctypes.c_char:
            return np.dtype(f"S{ctype._length_}")
        return np.dtype((dtype_of(element), (ctype._length_,)))
    if isinstance(ctype, type) and issubclass(ctype, (ctypes.Structure, ctypes.Union)):
        names, formats, offsets = [], [], []
        for field in ctype._fields_:
            name, member = field[0], field[1]
            if len(field) == 3:
                raise BPFError(
                    f"{ctype.__name__}.{name} is a bit-field, which numpy cannot hold: read this data "
                    "with the ctypes API (items(), or open_perf_buffer without batch=True)"
                )
            if name.startswith("__pad"):
                continue
            names.append(name)
            formats.append(dtype_of(member))
            offsets.append(getattr(ctype, name).offset)
        return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": ctypes.sizeof(ctype)})
    if ctype in (ctypes.c_void_p, ctypes.c_char_p) or (isinstance(ctype, type) and issubclass(ctype, ctypes._Pointer)):
        return np.dtype(np.uint64)
    return np.dtype(ctype)


def records(raw: bytes, dtype: np.dtype[Any], stride: int | None = None) -> np.ndarray:
    """The records packed in ``raw``, ``stride`` bytes apart (default: the dtype's size), as a writable
    array of ``dtype``; only the first ``dtype.itemsize`` bytes of each stride are the record's."""
    import numpy as np

    size = dtype.itemsize
    stride = stride or size
    count = len(raw) // stride if stride else 0
    if stride == size:
        return np.frombuffer(raw, dtype, count).copy()
    bytes_ = np.frombuffer(raw, np.uint8, count * stride).reshape(count, stride)[:, :size]
    return np.ascontiguousarray(bytes_).view(dtype).reshape(count)


class ArrayOps:
    """``to_numpy`` and ``to_pandas``, mixed into every table."""

    # Provided by the table this is mixed into (rbcc._tables.base.Table), and for per-CPU tables sLeaf
    # and total_cpu (read with getattr: only they have them).
    map: _core.Map
    Key: CType
    Leaf: CType

    if TYPE_CHECKING:

        def iteritems(self) -> Iterator[tuple[Any, Any]]: ...
        def _struct_keyed(self) -> bool: ...
        def _plain_slots(self) -> dict[int, int]: ...
        def _sections(
            self, bucket_fn: Callable[[Any], Any] | None, bucket_sort_fn: Callable[[list[Any]], Any] | None
        ) -> list[tuple[Any, dict[int, int]]]: ...

    def _value_ctype(self) -> tuple[CType, int]:
        """(the ctype of one value, or of one CPU's value; how many per entry: 1, or the CPU count)."""
        per_cpu = getattr(self, "sLeaf", None)
        if per_cpu is not None:
            return per_cpu, int(getattr(self, "total_cpu", 1))
        return self.Leaf, 1

    def _raw_entries(self) -> tuple[bytes, bytes, int]:
        """Every entry's key bytes and value bytes, and the stride between values (one CPU's copy for a
        per-CPU map): the core's batch read, or entry by entry where the kernel has none for this map."""
        leaf, cpus = self._value_ctype()
        try:
            keys, values = self.map.lookup_batch()
        except KernelFeatureError:
            pairs = list(self.iteritems())
            return b"".join(bytes(k) for k, _ in pairs), b"".join(bytes(v) for _, v in pairs), ctypes.sizeof(leaf)
        count = len(keys) // self.map.key_size if self.map.key_size else 0
        return keys, values, (len(values) // (count * cpus)) if count else ctypes.sizeof(leaf)

    def to_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys, values) of every entry as numpy arrays, in the map's order, from one batch read: keys
        of the key's dtype, values of the value's (see ``rbcc._tables.arrays.dtype_of``); a per-CPU map's
        values have one column per possible CPU, shape (entries, CPUs)."""
        raw_keys, raw_values, stride = self._raw_entries()
        keys = records(raw_keys, dtype_of(self.Key))
        leaf, cpus = self._value_ctype()
        values = records(raw_values, dtype_of(leaf), stride)
        return keys, values.reshape(len(keys), cpus) if hasattr(self, "sLeaf") else values

    def to_pandas(self) -> Any:
        """The table as a pandas DataFrame, one row per entry (per entry and CPU, with a ``cpu``
        column, for a per-CPU map). A struct's fields are columns of their own (``outer.inner`` when
        nested), a plain key or value is the ``key`` or ``value`` column, strings are decoded."""
        from .notebook import frame

        keys, values = self.to_numpy()
        if values.ndim == 2:
            import numpy as np

            cpus = values.shape[1]
            return frame(np.repeat(keys, cpus), values.reshape(-1), cpu=np.tile(np.arange(cpus), len(keys)))
        return frame(keys, values)

    def to_histogram(
        self,
        val_type: str = "value",
        kind: str = "log2",
        section_header: str = "Bucket ptr",
        section_print_fn: Any = None,
        bucket_fn: Any = None,
        bucket_sort_fn: Any = None,
    ) -> Any:
        """The table as a ``rbcc._tables.notebook.Histogram`` (``kind`` "log2" or "linear", read as
        print_log2_hist/print_linear_hist read it); a struct key gives ``{bucket: Histogram}``, in
        print order, each titled as print_log2_hist heads its section."""
        from . import hist
        from .notebook import histogram

        if kind not in ("log2", "linear"):
            raise ValueError(f'kind must be "log2" or "linear", not {kind!r}')
        if not self._struct_keyed():
            return histogram(self._plain_slots(), kind, val_type)
        sections = self._sections(bucket_fn, bucket_sort_fn)
        return {
            bucket: histogram(
                slots, kind, val_type, hist.section_title(section_header, bucket, section_print_fn).strip()
            )
            for bucket, slots in sections
        }
