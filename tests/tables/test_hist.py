"""bcc's text histograms (rbcc._tables.hist) and the tables' print_log2_hist, print_linear_hist and
print_json_hist, over a fake in-memory map (no root, no compiled core)."""

from __future__ import annotations

from typing import Any

import pytest
from _fakes import (
    ARRAY,
    COMM_KEY,
    DEV_KEY,
    PERCPU_HASH,
    S32,
    U64,
    FakeBPF,
    FakeMap,
)
from _pure_rbcc import load
from _tablecheck import hash_table, printed, struct_table

table = load("table")
hist = load("_tables.hist")
errors = load("errors")

# the tables' calls into the compiled core (buffers, the CPU count) go to a fake (tests/tables/conftest.py)
pytestmark = pytest.mark.usefixtures("fake_core")


# -- log2 histograms --

NARROW_VALUE = "     value               : count     distribution"
STARS40 = "*" * 40


def test_log2_empty_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert printed(capsys, hash_table().print_log2_hist) == ""


def test_log2_slot_zero_alone_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    # bcc's loop starts at slot 1 and prints the header only when a slot above 0 is set
    assert printed(capsys, hash_table({0: 4}).print_log2_hist) == ""


def test_log2_single_bucket(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, lambda: hash_table({3: 5}).print_log2_hist("usecs"))
    assert out == (
        "     usecs               : count     distribution\n"
        "         0 -> 1          : 0        |                                        |\n"
        "         2 -> 3          : 0        |                                        |\n"
        "         4 -> 7          : 5        |****************************************|\n"
    )


def test_log2_stars_scale_to_max_and_truncate(capsys: pytest.CaptureFixture[str]) -> None:
    # 40*7/9 = 31.1 -> 31 stars, 40*3/9 = 13.3 -> 13 stars
    out = printed(capsys, hash_table({1: 7, 2: 9, 4: 3}).print_log2_hist)
    assert out == (
        NARROW_VALUE + "\n"
        "         0 -> 1          : 7        |*******************************         |\n"
        "         2 -> 3          : 9        |****************************************|\n"
        "         4 -> 7          : 0        |                                        |\n"
        "         8 -> 15         : 3        |*************                           |\n"
    )


def test_log2_slot_zero_counts_toward_max(capsys: pytest.CaptureFixture[str]) -> None:
    # slot 0 is never printed but its 10 is the maximum: 5 gets half the bar
    out = printed(capsys, hash_table({0: 10, 1: 5}).print_log2_hist)
    assert out == NARROW_VALUE + "\n         0 -> 1          : 5        |********************                    |\n"


def test_log2_wide_layout_above_slot_32(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, lambda: hash_table({33: 2, 34: 1}).print_log2_hist("bytes", strip_leading_zero=True))
    assert out == (
        "               bytes                         : count     distribution\n"
        "          4294967296 -> 8589934591           : 2        |********************|\n"
        "          8589934592 -> 17179869183          : 1        |**********          |\n"
    )


def test_log2_slot_32_keeps_narrow_layout(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, lambda: hash_table({32: 1}).print_log2_hist(strip_leading_zero=True))
    assert out == NARROW_VALUE + "\n2147483648 -> 4294967295 : 1        |" + STARS40 + "|\n"


def test_log2_wide_layout_prints_every_row_from_slot_1(capsys: pytest.CaptureFixture[str]) -> None:
    lines = printed(capsys, hash_table({40: 1}).print_log2_hist).splitlines()
    assert len(lines) == 41
    assert lines[1] == "                   0 -> 1                    : 0        |                    |"


def test_log2_strip_leading_zero_keeps_inner_zeros(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, lambda: hash_table({3: 1, 5: 2}).print_log2_hist(strip_leading_zero=True))
    assert out == (
        NARROW_VALUE + "\n"
        "         4 -> 7          : 1        |********************                    |\n"
        "         8 -> 15         : 0        |                                        |\n"
        "        16 -> 31         : 2        |****************************************|\n"
    )


def test_log2_over_an_array_map(capsys: pytest.CaptureFixture[str]) -> None:
    t = table.table_for(FakeBPF(), FakeMap(ARRAY, max_entries=8, key_desc=S32, value_desc=U64), "dist")
    t[2] = 3
    out = printed(capsys, t.print_log2_hist)
    assert out == (
        NARROW_VALUE + "\n"
        "         0 -> 1          : 0        |                                        |\n"
        "         2 -> 3          : 3        |****************************************|\n"
    )


# -- sections (struct keys) --

DEV_SECTIONS = {(8, 1): 1, (8, 2): 2, (3, 1): 4}
DEV3 = NARROW_VALUE + "\n         0 -> 1          : 4        |" + STARS40 + "|\n"
DEV8 = (
    NARROW_VALUE + "\n"
    "         0 -> 1          : 1        |********************                    |\n"
    "         2 -> 3          : 2        |****************************************|\n"
)


def test_sections_raw_bucket_sorted(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, struct_table(DEV_KEY, DEV_SECTIONS).print_log2_hist)
    assert out == "\nBucket ptr = 3\n" + DEV3 + "\nBucket ptr = 8\n" + DEV8


def test_sections_with_print_fn(capsys: pytest.CaptureFixture[str]) -> None:
    t = struct_table(DEV_KEY, DEV_SECTIONS)
    out = printed(capsys, lambda: t.print_log2_hist("value", "disk", section_print_fn=lambda b: f"dev{b}"))
    assert out == "\ndisk = dev3\n" + DEV3 + "\ndisk = dev8\n" + DEV8


def test_sections_with_sort_fn(capsys: pytest.CaptureFixture[str]) -> None:
    t = struct_table(DEV_KEY, DEV_SECTIONS)
    out = printed(capsys, lambda: t.print_log2_hist(bucket_sort_fn=lambda b: sorted(b, reverse=True)))
    assert out == "\nBucket ptr = 8\n" + DEV8 + "\nBucket ptr = 3\n" + DEV3


def test_sections_bucket_fn_maps_first(capsys: pytest.CaptureFixture[str]) -> None:
    t = struct_table(DEV_KEY, {(8, 1): 1, (3, 2): 1})
    seen: list[Any] = []
    out = printed(capsys, lambda: t.print_log2_hist(bucket_fn=lambda b: b * 10, section_print_fn=seen.append))
    assert seen == [30, 80]
    assert out.startswith("\nBucket ptr = None\n")


def test_sections_bytes_bucket_uses_repr(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, struct_table(COMM_KEY, {(b"sh", 1): 1}).print_log2_hist)
    assert out == "\nBucket ptr = b'sh'\n" + NARROW_VALUE + "\n         0 -> 1          : 1        |" + STARS40 + "|\n"


def test_sections_strip_leading_zero(capsys: pytest.CaptureFixture[str]) -> None:
    t = struct_table(DEV_KEY, {(1, 3): 2})
    out = printed(capsys, lambda: t.print_log2_hist(strip_leading_zero=True))
    assert out == "\nBucket ptr = 1\n" + NARROW_VALUE + "\n         4 -> 7          : 2        |" + STARS40 + "|\n"


# -- linear histograms --

LINEAR_VALUE = "     value         : count     distribution"


def test_linear_basic(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, lambda: hash_table({1: 2, 3: 4}).print_linear_hist("kbytes"))
    assert out == (
        "     kbytes        : count     distribution\n"
        "        0          : 0        |                                        |\n"
        "        1          : 2        |********************                    |\n"
        "        2          : 0        |                                        |\n"
        "        3          : 4        |****************************************|\n"
    )


def test_linear_empty_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert printed(capsys, hash_table().print_linear_hist) == ""


def test_linear_prints_slot_zero(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, hash_table({0: 5}).print_linear_hist)
    assert out == LINEAR_VALUE + "\n        0          : 5        |" + STARS40 + "|\n"


def test_linear_strip_leading_zero(capsys: pytest.CaptureFixture[str]) -> None:
    out = printed(capsys, lambda: hash_table({2: 1, 4: 1}).print_linear_hist(strip_leading_zero=True))
    assert out == (
        LINEAR_VALUE + "\n"
        "        2          : 1        |****************************************|\n"
        "        3          : 0        |                                        |\n"
        "        4          : 1        |****************************************|\n"
    )


def test_linear_beyond_bcc_limit_still_prints(capsys: pytest.CaptureFixture[str]) -> None:
    lines = printed(capsys, hash_table({2000: 1}).print_linear_hist).splitlines()
    assert len(lines) == 2002


def test_linear_sections(capsys: pytest.CaptureFixture[str]) -> None:
    t = struct_table(DEV_KEY, {(1, 0): 1, (1, 2): 1})
    out = printed(capsys, lambda: t.print_linear_hist(section_header="cpu"))
    assert out == (
        "\ncpu = 1\n" + LINEAR_VALUE + "\n"
        "        0          : 1        |****************************************|\n"
        "        1          : 0        |                                        |\n"
        "        2          : 1        |****************************************|\n"
    )


def test_stars_plus_marks_overflow() -> None:
    assert hist.stars(5, 4, 40) == "*" * 39 + "+"
    assert hist.stars(0, 4, 40) == ""
    assert hist.stars(1, 3, 40) == "*" * 13


def test_json_hist(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hist, "strftime", lambda fmt: "T")
    out = printed(capsys, hash_table({1: 1, 3: 3}).print_json_hist)
    assert out == (
        "{'ts': 'T', 'val_type': 'value', 'data': [{'interval-start': 0, 'interval-end': 1, 'count': 1}, "
        "{'interval-start': 2, 'interval-end': 3, 'count': 0}, {'interval-start': 4, 'interval-end': 7, 'count': 3}]}\n"
    )


def test_percpu_hist_sums_cpus(capsys: pytest.CaptureFixture[str]) -> None:
    t = table.table_for(FakeBPF(), FakeMap(PERCPU_HASH, key_desc=S32, value_desc=U64), "pc")
    t[1] = [1, 1, 1, 1]
    out = printed(capsys, t.print_log2_hist)
    assert out == NARROW_VALUE + "\n         0 -> 1          : 4        |" + STARS40 + "|\n"
