"""Text histograms, formatted exactly as bcc's Python frontend prints them.

People diff these against bcc's output, so every width, rounding rule and
quirk below is deliberate: the log2 histogram never prints slot 0, prints
nothing at all (not even its header) unless a slot above 0 is non-zero, and
switches to a wider layout once the highest non-zero slot is above 32.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from time import strftime
from typing import Any

__all__ = [
    "LINEAR_INDEX_MAX",
    "LOG2_INDEX_MAX",
    "STARS_MAX",
    "get_json_hist",
    "linear_hist_lines",
    "log2_hist_lines",
    "print_linear_hist",
    "print_log2_hist",
    "section_title",
    "sections",
    "slots_to_list",
    "stars",
]

STARS_MAX = 40
LOG2_INDEX_MAX = 65  # slots for any 64-bit value: slot i holds [2**(i-1), 2**i - 1], slot 1 also holds 0
LINEAR_INDEX_MAX = 1025

_LOG2_NARROW = ("     %-19s : count     distribution", "%10d -> %-10d : %-8d |%-*s|", STARS_MAX)
_LOG2_WIDE = ("               %-29s : count     distribution", "%20d -> %-20d : %-8d |%-*s|", STARS_MAX // 2)
_LINEAR_HEADER = "     %-13s : count     distribution"
_LINEAR_ROW = "        %-10d : %-8d |%-*s|"


def stars(val: int, val_max: int, width: int) -> str:
    """The bar for ``val``: ``width * val / val_max`` stars, truncated; '+' marks a value past the maximum."""
    # bcc draws star i while i <= width*val/val_max - 1 (a float); floor() of that same float gives the
    # identical count, including its rounding at the edges.
    limit = width * val / val_max - 1
    count = min(width, max(0, math.floor(limit) + 1))
    text = "*" * count
    if val > val_max:
        text = text[:-1] + "+"
    return text


def _extent(vals: Sequence[int]) -> tuple[int, int]:
    """(index of the last positive value or -1, largest value or 0)."""
    idx_max = -1
    val_max = 0
    for i, v in enumerate(vals):
        if v > 0:
            idx_max = i
        val_max = max(val_max, v)
    return idx_max, val_max


def log2_hist_lines(vals: Sequence[int], val_type: str, strip_leading_zero: object = None) -> list[str]:
    """The lines bcc prints for a log2 histogram whose slot i counts values in [2**(i-1), 2**i)."""
    idx_max, val_max = _extent(vals)
    header, row, width = _LOG2_NARROW if idx_max <= 32 else _LOG2_WIDE
    lines = [header % val_type] if idx_max > 0 else []
    skipping = bool(strip_leading_zero)
    for i in range(1, idx_max + 1):
        low = (1 << i) >> 1
        high = (1 << i) - 1
        if low == high:
            low -= 1  # the first row covers both 0 and 1
        val = vals[i]
        if skipping and not val:
            continue
        skipping = False
        lines.append(row % (low, high, val, width, stars(val, val_max, width)))
    return lines


def linear_hist_lines(vals: Sequence[int], val_type: str, strip_leading_zero: object = None) -> list[str]:
    """The lines bcc prints for a linear histogram: one row per slot from 0 to the last non-zero one."""
    idx_max, val_max = _extent(vals)
    lines = [_LINEAR_HEADER % val_type] if idx_max >= 0 else []
    skipping = bool(strip_leading_zero)
    for i in range(idx_max + 1):
        val = vals[i]
        if skipping and not val:
            continue
        skipping = False
        lines.append(_LINEAR_ROW % (i, val, STARS_MAX, stars(val, val_max, STARS_MAX)))
    return lines


def print_log2_hist(vals: Sequence[int], val_type: str = "value", strip_leading_zero: object = None) -> None:
    for line in log2_hist_lines(vals, val_type, strip_leading_zero):
        print(line)


def print_linear_hist(vals: Sequence[int], val_type: str = "value", strip_leading_zero: object = None) -> None:
    for line in linear_hist_lines(vals, val_type, strip_leading_zero):
        print(line)


def get_json_hist(vals: Sequence[int], val_type: str, section_bucket: tuple[str, Any] | None = None) -> dict[str, Any]:
    """bcc's "JSON" histogram: a dict of log2 intervals up to the last non-zero slot (slot 0 omitted)."""
    last = max((i for i, v in enumerate(vals) if v != 0), default=0)
    data = [{"interval-start": (1 << i) >> 1 if i > 1 else 0, "interval-end": (1 << i) - 1, "count": int(vals[i])}
            for i in range(1, last + 1)]  # fmt: skip
    histogram: dict[str, Any] = {"ts": strftime("%Y-%m-%d %H:%M:%S"), "val_type": val_type, "data": data}
    if section_bucket:
        histogram[section_bucket[0]] = section_bucket[1]
    return histogram


def slots_to_list(slots: dict[int, int], minimum: int) -> list[int]:
    """Dense counts from {slot: count}, at least ``minimum`` long so the layout rules see bcc's array."""
    size = max(minimum, max(slots, default=-1) + 1)
    vals = [0] * size
    for slot, count in slots.items():
        if slot < 0:
            raise IndexError(f"histogram slot {slot} is negative")
        vals[slot] = count
    return vals


def sections(
    entries: Iterable[tuple[Any, int, int]],
    bucket_fn: Callable[[Any], Any] | None,
    bucket_sort_fn: Callable[[list[Any]], Iterable[Any]] | None,
) -> list[tuple[Any, dict[int, int]]]:
    """Group (bucket, slot, count) triples into one {slot: count} per bucket, in print order.

    Buckets that ``bucket_fn`` maps together are summed (bcc would keep an arbitrary one).
    Without ``bucket_sort_fn`` the buckets are sorted, so output doesn't depend on hash order.
    """
    grouped: dict[Any, dict[int, int]] = {}
    for bucket, slot, count in entries:
        if bucket_fn is not None:
            bucket = bucket_fn(bucket)
        slots = grouped.setdefault(bucket, {})
        slots[slot] = slots.get(slot, 0) + count
    order: Iterable[Any]
    if bucket_sort_fn is not None:
        order = bucket_sort_fn(list(grouped))
    else:
        try:
            order = sorted(grouped)
        except TypeError:  # buckets of mixed types: keep the map's order
            order = list(grouped)
    return [(bucket, grouped[bucket]) for bucket in order]


def section_title(section_header: str, bucket: Any, section_print_fn: Callable[[Any], Any] | None) -> str:
    """The line before each section; print() of it gives bcc's blank line first."""
    # %-formatting on purpose: it is what bcc uses, and str.format differs for objects with __format__.
    if section_print_fn is not None:
        return "\n%s = %s" % (section_header, section_print_fn(bucket))  # noqa: UP031
    return "\n%s = %r" % (section_header, bucket)  # noqa: UP031
