"""rbcc._tables.notebook: DataFrames of structured arrays, Histogram's text (bcc's), numbers, table and plot,
and (as root) tables of a real program as DataFrames and histograms."""

from __future__ import annotations

import contextlib
import io
import os

import pytest
from _bpfutil import possible_cpus, target_cflags

from rbcc import BPF
from rbcc._tables import hist
from rbcc._tables.notebook import Histogram, frame

np = pytest.importorskip("numpy", reason="numpy (a dependency of rbcc) is not installed")
pd = pytest.importorskip("pandas", reason="pandas (rbcc[notebook], installed by make test) is not installed")


def _printed(fn, *args) -> str:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        fn(*args)
    return out.getvalue()


def test_a_frame_has_a_column_per_field_and_decodes_strings() -> None:
    key = np.dtype([("pid", "u4"), ("comm", "S16")])
    val = np.dtype([("stats", [("calls", "u8"), ("pid", "u4")]), ("hist", "u4", (2,))])
    keys = np.array([(1, b"bash"), (2, b"sh")], key)
    values = np.array([((10, 9), (1, 2)), ((20, 8), (3, 4))], val)
    df = frame(keys, values)
    assert list(df.columns) == ["pid", "comm", "stats.calls", "stats.pid", "hist"]
    assert list(df["comm"]) == ["bash", "sh"] and list(df["stats.calls"]) == [10, 20]
    assert [list(h) for h in df["hist"]] == [[1, 2], [3, 4]]
    plain = frame(np.array([3, 4], "u4"), np.array([30, 40], "u8"), cpu=[0, 1])
    assert list(plain.columns) == ["key", "value", "cpu"] and list(plain["value"]) == [30, 40]
    clash = frame(np.array([(1,)], [("pid", "u4")]), np.array([(2,)], [("pid", "u4")]))
    assert list(clash.columns) == ["key.pid", "value.pid"]


def _log2(counts: dict[int, int]) -> Histogram:
    arr = np.zeros(hist.LOG2_INDEX_MAX, np.int64)
    for slot, n in counts.items():
        arr[slot] = n
    return Histogram(arr, "log2", "usecs")


def test_a_histogram_prints_as_bcc_does() -> None:
    h = _log2({1: 3, 2: 0, 4: 12, 5: 1})
    assert str(h) + "\n" == _printed(hist.print_log2_hist, list(h.counts), "usecs")
    lin = Histogram(np.array([0, 2, 5]), "linear", "n")
    assert str(lin) + "\n" == _printed(hist.print_linear_hist, [0, 2, 5], "n")


def test_a_histogram_as_a_table_has_bccs_slot_ranges() -> None:
    df = _log2({1: 3, 4: 12, 5: 1}).to_pandas()
    assert df.index.name == "usecs"
    assert df.to_dict("list") == {"low": [0, 2, 4, 8, 16], "high": [1, 3, 7, 15, 31], "count": [3, 0, 0, 12, 1]}
    assert Histogram(np.array([0, 2, 5]), "linear").to_pandas()["low"].tolist() == [0, 1, 2]


def test_a_histogram_draws_itself() -> None:
    pytest.importorskip("matplotlib", reason="matplotlib (rbcc[notebook], installed by make test) is not installed")
    h = _log2({1: 3, 4: 12})
    png = h._repr_png_()
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    ax = h.plot()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0-1", "2-3", "4-7", "8-15"]
    assert [int(p.get_height()) for p in ax.patches] == [3, 0, 0, 12]


# -- live --

PROGRAM = r"""
struct op_key { char op[8]; u64 slot; };
BPF_HISTOGRAM(dist, struct op_key);
BPF_HISTOGRAM(plain);
BPF_PERCPU_HASH(per_cpu, u32, u64);

static __always_inline void count(const char *op, u64 value) {
    struct op_key k = {.slot = bpf_log2l(value)};
    __builtin_memcpy(k.op, op, sizeof(k.op));
    dist.increment(k);
    plain.increment(bpf_log2l(value));
}

TRACEPOINT_PROBE(syscalls, sys_enter_pread64) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    char op[8] = "pread";
    count(op, args->count);
    u32 key = args->count;
    u64 one = 1, *n = per_cpu.lookup_or_try_init(&key, &one);
    if (n)
        *n += 1;
    return 0;
}
TRACEPOINT_PROBE(syscalls, sys_enter_pwrite64) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET)
        return 0;
    char op[8] = "pwrite";
    count(op, args->count);
    return 0;
}
"""


@pytest.mark.needs_root
def test_a_programs_histograms_and_tables(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "f"
    path.write_bytes(b"x" * 4096)
    with BPF(text=PROGRAM, cflags=target_cflags()) as b:
        fd = os.open(path, os.O_RDWR)
        try:
            for size in (1, 100, 100, 3000):
                os.pread(fd, size, 0)
            os.pwrite(fd, b"y" * 10, 0)
        finally:
            os.close(fd)
        plain = b["plain"].to_histogram("bytes")
        assert isinstance(plain, Histogram)
        assert {i: int(c) for i, c in enumerate(plain.counts) if c} == {1: 1, 4: 1, 7: 2, 12: 1}
        assert str(plain) + "\n" == _printed(b["plain"].print_log2_hist, "bytes")
        sections = b["dist"].to_histogram("bytes", section_header="op", section_print_fn=bytes.decode)
        assert list(sections) == [b"pread", b"pwrite"]
        assert sections[b"pwrite"].title == "op = pwrite" and sections[b"pwrite"].to_pandas()["count"].sum() == 1
        assert sections[b"pread"].to_pandas()["count"].sum() == 4
        df = b["per_cpu"].to_pandas()
        assert list(df.columns) == ["key", "value", "cpu"] and len(df) == 3 * possible_cpus()
        assert df.groupby("key")["value"].sum().to_dict() == {1: 2, 100: 3, 3000: 2}
