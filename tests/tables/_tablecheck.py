"""What the table tests over fakes share: tables made over a FakeMap, and what a printer printed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from _fakes import HASH, S32, U64, FakeBPF, FakeMap
from _pure_rbcc import load

table = load("table")


def hash_table(entries: dict[int, int] | None = None, key_desc: dict[str, Any] = S32) -> Any:
    t = table.table_for(FakeBPF(), FakeMap(HASH, key_desc=key_desc, value_desc=U64), "dist")
    for k, v in (entries or {}).items():
        t[k] = v
    return t


def struct_table(key_desc: dict[str, Any], entries: dict[tuple[Any, int], int]) -> Any:
    t = table.table_for(FakeBPF(), FakeMap(HASH, key_size=16, key_desc=key_desc, value_desc=U64), "dist")
    first = key_desc["members"][0]["name"]
    for (bucket, slot), count in entries.items():
        t[t.Key(**{first: bucket, "slot": slot})] = count
    return t


def printed(capsys: pytest.CaptureFixture[str], fn: Callable[[], None]) -> str:
    fn()
    return capsys.readouterr().out
