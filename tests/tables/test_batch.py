"""bcc's batch table methods (rbcc._tables.batch) over a fake map: the paths the real kernel seldom takes
(no batch calls, a key deleted meanwhile) and the checks of their arguments."""

from __future__ import annotations

from typing import Any

import pytest
from _fakes import (
    HASH,
    U32,
    U64,
    FakeBPF,
    FakeMap,
)
from _pure_rbcc import load

table = load("table")
hist = load("_tables.hist")
errors = load("errors")

# the tables' calls into the compiled core (buffers, the CPU count) go to a fake (tests/tables/conftest.py)
pytestmark = pytest.mark.usefixtures("fake_core")


# -- batch operations over a fake map: the paths the real kernel seldom takes --


class BatchMap(FakeMap):
    """FakeMap with the core's batch calls; ``unsupported`` names the ones to refuse as an old kernel would."""

    def __init__(self, *args: Any, unsupported: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unsupported = unsupported
        self.calls: list[str] = []

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        if name in self.unsupported:
            raise errors.KernelFeatureError(f"{name} is not supported for map 'fake' by this kernel")

    def lookup_batch(self) -> tuple[bytes, bytes]:
        self._enter("lookup_batch")
        return b"".join(self.data), b"".join(self.data.values())

    def lookup_and_delete_batch(self) -> tuple[bytes, bytes]:
        self._enter("lookup_and_delete_batch")
        out = self.lookup_batch()
        self.data.clear()
        return out

    def update_batch(self, keys: bytes, values: bytes, flags: int = 0) -> None:
        self._enter("update_batch")
        n = len(keys) // self.key_size
        for i in range(n):
            self.data[keys[i * self.key_size : (i + 1) * self.key_size]] = values[i * 8 : (i + 1) * 8]

    def delete_batch(self, keys: bytes) -> None:
        self._enter("delete_batch")
        for i in range(len(keys) // self.key_size):
            if self.data.pop(keys[i * self.key_size : (i + 1) * self.key_size], None) is None:
                raise KeyError(f"key #{i} of the batch is not in the map")


def batch_table(**kwargs: Any) -> Any:
    return table.table_for(FakeBPF(), BatchMap(HASH, key_desc=U32, value_desc=U64, **kwargs), "b")


def test_batch_methods_use_the_batch_calls() -> None:
    t = batch_table()
    t.items_update_batch((t.Key * 3)(1, 2, 3), (t.Leaf * 3)(10, 20, 30))
    assert sorted((k.value, v.value) for k, v in t.items_lookup_batch()) == [(1, 10), (2, 20), (3, 30)]
    t.items_delete_batch([2])
    assert sorted((k.value, v.value) for k, v in t.items_lookup_and_delete_batch()) == [(1, 10), (3, 30)]
    assert t.map.calls == ["update_batch", "lookup_batch", "delete_batch", "lookup_and_delete_batch", "lookup_batch"]
    assert len(t) == 0


def test_batch_methods_go_entry_by_entry_where_the_kernel_has_no_batch() -> None:
    every = ("lookup_batch", "lookup_and_delete_batch", "update_batch", "delete_batch")
    t = batch_table(unsupported=every)
    t.items_update_batch([1, 2, 3], [10, 20, 30])
    assert sorted((k.value, v.value) for k, v in t.items_lookup_batch()) == [(1, 10), (2, 20), (3, 30)]
    t.items_delete_batch([2])
    with pytest.raises(KeyError):
        t.items_delete_batch([2])
    assert sorted(k.value for k, _ in t.items_lookup_and_delete_batch()) == [1, 3]
    assert len(t) == 0


def test_delete_all_finishes_one_by_one_when_the_program_deleted_a_key_first() -> None:
    t = batch_table(unsupported=("lookup_and_delete_batch",))
    t.items_update_batch([1, 2, 3], [1, 2, 3])
    real_lookup = t.map.lookup_batch

    def racing_lookup() -> tuple[bytes, bytes]:
        out = real_lookup()
        del t.map.data[(2).to_bytes(4, "little")]  # the BPF program deletes key 2 meanwhile
        return out

    t.map.lookup_batch = racing_lookup
    t.items_delete_batch()
    t.map.lookup_batch = real_lookup
    assert len(t) == 0


def test_batch_arguments_are_checked_as_in_bcc() -> None:
    t = batch_table()
    with pytest.raises(ValueError, match="keys array length != values array length"):
        t.items_update_batch([1], [1, 2])
    with pytest.raises(ValueError, match="more than the map's 64 entries"):
        t.items_delete_batch(list(range(65)))
    with pytest.raises(TypeError, match="ctypes array"):
        t.items_update_batch("12", "34")
    t.items_update_batch([], [])  # nothing to do
    assert t.map.calls == []
