"""The base of every table: dict-like access to a ``_core.Map``, bcc's histogram printers and text
forms, and the two families most tables belong to (hash tables and arrays).

Keys and values cross the map as ``bytes(ctypes_obj)`` and come back through
``Type.from_buffer_copy``; the other table kinds live beside this module (see ``factory``).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import BPFError
from . import hist, text
from .arrays import ArrayOps
from .batch import BatchOps, Layout
from .types import from_desc, from_size

if TYPE_CHECKING:
    from .. import _core

__all__ = [
    "BYTES_LIKE",
    "Array",
    "ArrayBase",
    "CType",
    "HashTable",
    "HistogramTable",
    "LruHash",
    "MapObject",
    "SimpleCData",
    "Table",
    "TableBase",
    "TableOwner",
    "coerce",
    "count_of",
    "decode",
]

CType = Any  # a ctypes class


SimpleCData: Any = ctypes._SimpleCData  # bcc relies on it too; ctypes has no public name for it
_CDATA = (ctypes.Structure, ctypes.Union, ctypes.Array, SimpleCData)
BYTES_LIKE = (bytes, bytearray, memoryview)


def coerce(value: Any, ctype: CType, what: str) -> Any:
    """``value`` as an instance of ``ctype``: bcc accepts ``Key(3)``, ``ctypes.c_int(3)`` or plain ``3``."""
    if isinstance(value, ctype):
        return value
    if issubclass(ctype, SimpleCData):
        plain = value.value if isinstance(value, SimpleCData) else value
        if isinstance(plain, (int, float)):
            return ctype(plain)
    if issubclass(ctype, ctypes.Array) and isinstance(value, (list, tuple)):
        return ctype(*value)
    if isinstance(value, (*_CDATA, *BYTES_LIKE)):
        raw = bytes(value)
        if len(raw) == ctypes.sizeof(ctype):
            return ctype.from_buffer_copy(raw)
        raise TypeError(f"{what} must be {ctypes.sizeof(ctype)} bytes ({ctype.__name__}), got {len(raw)}")
    raise TypeError(f"{what} must be a {ctype.__name__} (or an int for a scalar), got {type(value).__name__}")


def decode(raw: bytes, ctype: CType) -> Any:
    size = ctypes.sizeof(ctype)
    if len(raw) < size:
        raw = raw + bytes(size - len(raw))
    return ctype.from_buffer_copy(raw)


def count_of(value: Any) -> int:
    """A histogram count from a leaf: an integer ctype, or a per-CPU array that gets summed."""
    if isinstance(value, int):
        return value
    if isinstance(value, ctypes.Array):
        return sum(count_of(v) for v in value)
    return int(value.value)


class TableOwner(Protocol):
    """What a table asks of the BPF object that owns it (rbcc._bpf.BPF; the tests' FakeBPF): its events'
    type, and the registration of the buffers its ``open_*_buffer`` opens, so that the object polls them."""

    def _event_type(self, name: str) -> dict[str, Any] | None: ...
    def _register_perf_buffer(self, name: str, buffer: _core.PerfBuffer) -> None: ...
    def _register_ring_buffer(
        self,
        name: str,
        core_map: _core.Map,
        callback: Callable[..., Any],
        record_size: int | None = None,
        ctx: Any = None,
        on_error: Callable[[Any, BaseException], None] | None = None,
    ) -> None: ...


class MapObject:
    """What every map object shares, keyed or not (tables, and bcc's QueueStack): the map handle, its
    name and fd, and the type of its values."""

    def __init__(self, bpf: TableOwner, map: _core.Map, name: str, leaftype: CType | None = None) -> None:
        self.bpf = bpf  # the owning BPF object; only a reference, it owns the maps' lifetime
        self.map = map
        self._name = name
        self.Leaf: CType = leaftype if leaftype is not None else self._default_leaf(map)
        self.ttype = map.map_type
        self.flags = map.flags  # as the kernel created the map (BPF_F_NO_PREALLOC, ...)
        # bcc numbers maps within its module; the kernel's id names the map anywhere (bpftool map show id N)
        self.map_id = map.id
        self.max_entries = map.max_entries

    @staticmethod
    def _default_leaf(map: _core.Map) -> CType:
        desc = map.value_type()
        return from_desc(desc) if desc is not None else from_size(map.value_size)

    @property
    def name(self) -> str:
        return self._name

    @property
    def map_fd(self) -> int:
        return self.map.fd

    def get_fd(self) -> int:
        return self.map.fd

    def _as_leaf(self, leaf: Any) -> Any:
        return coerce(leaf, self.Leaf, "value")

    def leaf_sprintf(self, leaf: Any) -> bytes:
        """``leaf`` as bcc prints it."""
        return text.sprintf(self.Leaf, self._as_leaf(leaf))

    def leaf_scanf(self, leaf_str: str | bytes) -> Any:
        """The value that ``leaf_str`` (the text form) describes; ScanfError when it doesn't read."""
        return text.scanf(self.Leaf, leaf_str)


class Table(MapObject, BatchOps, ArrayOps, MutableMapping[Any, Any]):
    """What every table shares (bcc's ``TableBase``): dict-like access, batch access, text forms and
    the histogram printers."""

    def __init__(
        self, bpf: TableOwner, map: _core.Map, name: str, keytype: CType | None = None, leaftype: CType | None = None
    ) -> None:
        MapObject.__init__(self, bpf, map, name, leaftype)
        self.Key: CType = keytype if keytype is not None else self._default_key(map)
        self._cbs: dict[Any, Any] = {}  # callbacks the core holds, kept alive as long as the table

    @staticmethod
    def _default_key(map: _core.Map) -> CType:
        desc = map.key_type()
        return from_desc(desc) if desc is not None else from_size(map.key_size)

    # -- the hooks subclasses change: key normalisation, reading and writing a value --

    def _as_key(self, key: Any) -> Any:
        return coerce(key, self.Key, "key")

    def _fetch(self, key: bytes) -> Any | None:
        raw = self.map.lookup(key)
        return None if raw is None else decode(raw, self.Leaf)

    def _store(self, key: bytes, leaf: Any, flags: int) -> None:
        self.map.update(key, bytes(self._as_leaf(leaf)), flags)

    def _present(self, value: Any) -> Any:
        return value

    def _encode_batch_value(self, leaf: Any) -> bytes:
        """One value as it sits in a batch buffer."""
        return bytes(self._as_leaf(leaf))

    def _value_layout(self, stride: int) -> Layout:
        """Where a value's bytes are among values ``stride`` bytes apart in a batch buffer: the first
        ``sizeof(Leaf)`` of them (a longer Leaf is zero-filled, as ``decode`` does)."""
        return (stride, min(ctypes.sizeof(self.Leaf), stride), 1, 0)

    def _presents_values(self) -> bool:
        """Whether ``_present`` changes values (a per-CPU table's reducer), so batch reads apply it."""
        return False

    # -- bcc's text forms (see rbcc._tables.text) --

    def key_sprintf(self, key: Any) -> bytes:
        """``key`` as bcc prints it: ``b"0x2"``, ``b'{ 0x1 "comm" }'``, ..."""
        return text.sprintf(self.Key, self._as_key(key))

    def key_scanf(self, key_str: str | bytes) -> Any:
        """The key that ``key_str`` (the text form) describes; ScanfError when it doesn't read."""
        return text.scanf(self.Key, key_str)

    # -- mapping protocol --

    def lookup(self, key: Any) -> Any | None:
        """The value at ``key``, or None when it is absent."""
        value = self._fetch(bytes(self._as_key(key)))
        return None if value is None else self._present(value)

    def update(self, *args: Any, **kwargs: Any) -> None:
        """``update(key, leaf, flags=0)`` writes one entry; ``update(mapping)`` is dict.update."""
        if len(args) in (2, 3) and not kwargs:
            flags = int(args[2]) if len(args) == 3 else 0
            self._store(bytes(self._as_key(args[0])), args[1], flags)
        else:
            MutableMapping.update(self, *args, **kwargs)

    def __getitem__(self, key: Any) -> Any:
        value = self.lookup(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: Any, leaf: Any) -> None:
        self._store(bytes(self._as_key(key)), leaf, 0)

    def __delitem__(self, key: Any) -> None:
        if not self.map.delete(bytes(self._as_key(key))):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        try:
            return self.lookup(key) is not None
        except (TypeError, IndexError):
            return False

    def get(self, key: Any, default: Any = None) -> Any:
        value = self.lookup(key)
        return default if value is None else value

    def __iter__(self) -> Iterator[Any]:
        # The keys as they are now, as one list: the BPF program may change the map while the caller
        # walks it, and walking the kernel's key order meanwhile can skip or repeat keys.
        return iter(self._list_keys())

    def __len__(self) -> int:
        raw = self._batch_keys_raw()
        if raw is not None:
            return len(raw) // self.map.key_size
        return len(self.map.keys())  # noqa: SIM118 - a map, not a dict

    def iter(self) -> Iterator[Any]:
        return iter(self)

    class Iter:
        """bcc's walk of a table's keys in the kernel's order, one lookup of the next key at a time
        (``for k in table`` takes the keys as they are now instead)."""

        def __init__(self, table: Table) -> None:
            self.table = table
            self.key: Any = None

        def __iter__(self) -> Table.Iter:
            return self

        def __next__(self) -> Any:
            return self.next()

        def next(self) -> Any:
            self.key = self.table.next(self.key)
            return self.key

    def next(self, key: Any) -> Any:
        """The key after ``key`` in the kernel's order (the first with None); StopIteration at the end."""
        raw = self.map.next_key(None if key is None else bytes(self._as_key(key)))
        if raw is None:
            raise StopIteration
        return self.Key.from_buffer_copy(raw)

    def keys(self) -> Iterator[Any]:  # type: ignore[override]
        # An iterator, as in bcc (not a view).
        return iter(self)

    def itervalues(self) -> Iterator[Any]:
        for _, value in self.iteritems():
            yield value

    def iteritems(self) -> Iterator[tuple[Any, Any]]:
        for key in self:
            # The BPF program may delete an entry between listing the keys and reading it.
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def items(self) -> list[tuple[Any, Any]]:  # type: ignore[override]
        # One batch syscall per chunk where the kernel has them, not two syscalls per entry: a tool
        # that prints a big map each interval reads it in a few calls.
        return self._read_all()

    def values(self) -> list[Any]:  # type: ignore[override]
        return self._read_values()

    def clear(self) -> None:
        # Key by key rather than MutableMapping's popitem loop, which races with the BPF program.
        for key in list(self.keys()):
            try:
                del self[key]
            except KeyError:
                pass

    def zero(self) -> None:
        """Set every existing entry to zero, keeping the keys."""
        # Keys first: rewriting values while walking a hash map can revisit buckets forever.
        for key in list(self.keys()):
            self[key] = self.Leaf()

    # -- histograms --

    def _struct_keyed(self) -> bool:
        return isinstance(self.Key, type) and issubclass(self.Key, ctypes.Structure)

    def _hist_fields(self) -> tuple[str, str]:
        """(bucket field, slot field) of a struct key: the first real field, and ``slot`` or the second."""
        names = [field[0] for field in self.Key._fields_ if not field[0].startswith("__pad")]
        if len(names) < 2:
            raise BPFError(f"histogram {self._name!r}: a struct key needs a bucket field and a slot field")
        return names[0], "slot" if "slot" in names[1:] else names[1]

    def decode_c_struct(
        self,
        tmp: dict[Any, list[int]],
        buckets: list[Any],
        bucket_fn: Callable[[Any], Any] | None = None,
        bucket_sort_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        """bcc's step of a sectioned histogram: each bucket's log2 slots into ``tmp`` (bucket -> counts),
        the buckets in print order appended to ``buckets``."""
        for bucket, slots in self._sections(bucket_fn, bucket_sort_fn):
            tmp[bucket] = hist.slots_to_list(slots, hist.LOG2_INDEX_MAX)
            buckets.append(bucket)

    def _plain_slots(self) -> dict[int, int]:
        return {int(key.value): count_of(value) for key, value in self.items()}

    def _sections(
        self, bucket_fn: Callable[[Any], Any] | None, bucket_sort_fn: Callable[[list[Any]], Any] | None
    ) -> list[tuple[Any, dict[int, int]]]:
        bucket_field, slot_field = self._hist_fields()
        entries = ((getattr(k, bucket_field), int(getattr(k, slot_field)), count_of(v)) for k, v in self.items())
        return hist.sections(entries, bucket_fn, bucket_sort_fn)

    def print_log2_hist(
        self,
        val_type: str = "value",
        section_header: str = "Bucket ptr",
        section_print_fn: Callable[[Any], Any] | None = None,
        bucket_fn: Callable[[Any], Any] | None = None,
        strip_leading_zero: object = None,
        bucket_sort_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        """Print the table as bcc's log2 histogram; a struct key prints one section per bucket."""
        self._print_hist(
            hist.print_log2_hist, hist.LOG2_INDEX_MAX, val_type, section_header, section_print_fn, bucket_fn,
            strip_leading_zero, bucket_sort_fn,
        )  # fmt: skip

    def print_linear_hist(
        self,
        val_type: str = "value",
        section_header: str = "Bucket ptr",
        section_print_fn: Callable[[Any], Any] | None = None,
        bucket_fn: Callable[[Any], Any] | None = None,
        strip_leading_zero: object = None,
        bucket_sort_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        """Print the table as bcc's linear histogram (slot n counts the value n)."""
        # bcc preallocates LINEAR_INDEX_MAX slots and fails beyond; here the list just grows.
        self._print_hist(
            hist.print_linear_hist, 1, val_type, section_header, section_print_fn, bucket_fn,
            strip_leading_zero, bucket_sort_fn,
        )  # fmt: skip

    def _print_hist(
        self,
        printer: Callable[[list[int], str, object], None],
        min_slots: int,
        val_type: str,
        section_header: str,
        section_print_fn: Callable[[Any], Any] | None,
        bucket_fn: Callable[[Any], Any] | None,
        strip_leading_zero: object,
        bucket_sort_fn: Callable[[list[Any]], Any] | None,
    ) -> None:
        if not self._struct_keyed():
            printer(hist.slots_to_list(self._plain_slots(), min_slots), val_type, strip_leading_zero)
            return
        for bucket, slots in self._sections(bucket_fn, bucket_sort_fn):
            print(hist.section_title(section_header, bucket, section_print_fn))
            printer(hist.slots_to_list(slots, min_slots), val_type, strip_leading_zero)

    def print_json_hist(
        self,
        val_type: str = "value",
        section_header: str = "Bucket ptr",
        section_print_fn: Callable[[Any], Any] | None = None,
        bucket_fn: Callable[[Any], Any] | None = None,
        bucket_sort_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        """Print bcc's dict form of a log2 histogram (a Python dict repr, as bcc prints it)."""
        if not self._struct_keyed():
            print(hist.get_json_hist(hist.slots_to_list(self._plain_slots(), hist.LOG2_INDEX_MAX), val_type))
            return
        for bucket, slots in self._sections(bucket_fn, bucket_sort_fn):
            shown = section_print_fn(bucket) if section_print_fn is not None else bucket
            vals = hist.slots_to_list(slots, hist.LOG2_INDEX_MAX)
            print(hist.get_json_hist(vals, val_type, (section_header, shown)))


TableBase = Table  # bcc's name for the base class


class HashTable(Table):
    pass


class LruHash(HashTable):
    pass


class ArrayBase(Table):
    """Fixed-size tables indexed 0..max_entries-1: every index always exists."""

    def _as_key(self, key: Any) -> Any:
        if isinstance(key, int):
            if key < 0:
                key += len(self)  # Python-style negative indices, as bcc allows
            key = self.Key(key)
        elif not isinstance(key, SimpleCData):
            raise IndexError("Array index must be an integer type")
        if not 0 <= key.value < len(self):
            raise IndexError("Array index out of range")
        return coerce(key, self.Key, "key")

    def __len__(self) -> int:
        return self.max_entries

    def __iter__(self) -> Iterator[Any]:
        return (self.Key(i) for i in range(self.max_entries))

    class Iter:  # bcc's name again, for the indices of an array
        """bcc's walk of an array's indices, 0 to max_entries - 1."""

        def __init__(self, table: ArrayBase, keytype: Any = None) -> None:
            self.Key = keytype if keytype is not None else table.Key
            self.table = table
            self.i = -1

        def __iter__(self) -> ArrayBase.Iter:
            return self

        def __next__(self) -> Any:
            return self.next()

        def next(self) -> Any:
            self.i += 1
            if self.i == len(self.table):
                raise StopIteration
            return self.Key(self.i)

    def clearitem(self, key: Any) -> None:
        """Write a zero value at ``key``."""
        self._store(bytes(self._as_key(key)), self.Leaf(), 0)


class Array(ArrayBase):
    _zeroes_on_delete = True

    def __delitem__(self, key: Any) -> None:
        # The kernel can't delete from an array; bcc zeroes the slot instead.
        self.clearitem(key)


class HistogramTable(Array):
    """bcc's BPF_HISTOGRAM with an int key: an array of counters."""
