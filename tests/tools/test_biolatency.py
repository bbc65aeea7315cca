"""biolatency: the C it builds for its options, and live histograms that count the O_DIRECT I/O the
test issues to the root disk."""

from __future__ import annotations

import ast
import re
import time

import pytest
from _blockio import direct_file, root_disk
from _bpfutil import run_interrupted
from _toolcheck import run_rbcc, spawn_rbcc, text_of

from rbcc.tools import biolatency

WRITES = 24


def _text(*argv: str) -> str:
    return text_of(biolatency, *argv)


def _counts(out: str) -> dict[str, int]:
    """Each histogram's total count, by the section it follows ("" for a plain one)."""
    totals: dict[str, int] = {}
    section = ""
    for line in out.splitlines():
        if m := re.match(r"^(?:disk|flags) = (.*)$", line):
            section = m.group(1)
        elif m := re.match(r"^\s+\d+ -> \d+\s+: (\d+)\s+\|", line):
            totals[section] = totals.get(section, 0) + int(m.group(1))
    return totals


def test_options_shape_the_program() -> None:
    plain = _text()
    assert "BPF_HISTOGRAM(dist);" in plain and "/ 1000;" in plain and "extension" not in plain
    assert "/ 1000000;" in _text("-m")
    assert "struct disk_key_t key" in _text("-D") and "BPF_HISTOGRAM(dist, struct disk_key_t);" in _text("-D")
    assert ".flags = rq->cmd_flags" in _text("-F")
    assert "BPF_ARRAY(extension" in _text("-e")
    disk = root_disk()
    filtered = _text("-d", disk)
    assert re.search(r"rq->q->disk->major != \d+ \|\| rq->q->disk->first_minor != \d+", filtered)
    assert "rq->q->disk->major" not in plain


def test_bad_options_are_refused_in_one_line() -> None:
    parser = biolatency.build_parser()
    for argv in (["-D", "-F"], ["-d", "no-such-disk-rbcc"], ["0"]):
        with pytest.raises(SystemExit) as e:
            parser.parse_args(argv)
        assert e.value.code == 2


def test_ebpf_prints_the_program() -> None:
    out = run_rbcc("tool", "biolatency", "--ebpf", "-F")
    assert out.returncode == 0, out.stderr
    assert "int trace_req_done(struct bpf_raw_tracepoint_args *ctx)" in out.stdout


def _tracing(h: str) -> bool:
    return h.startswith("Tracing block device I/O")


@pytest.mark.needs_root
def test_counts_the_writes_the_test_issues() -> None:
    with direct_file() as f:
        out, _ = run_interrupted(["tool", "biolatency"], _tracing, lambda: f.write(WRITES, 4096))
    assert _counts(out)[""] >= WRITES
    assert "usecs" in out


@pytest.mark.needs_root
def test_per_disk_queued_and_extension() -> None:
    with direct_file() as f:
        out, _ = run_interrupted(["tool", "biolatency", "-D", "-Q", "-e", "-m"], _tracing, lambda: f.read(WRITES, 8192))
    assert _counts(out).get(root_disk(), 0) >= WRITES, out
    assert "msecs" in out
    m = re.search(r"avg = \d+ msecs, total: \d+ msecs, count: (\d+)", out)
    assert m and int(m.group(1)) >= WRITES


@pytest.mark.needs_root
def test_per_flags_json_on_one_disk() -> None:
    # -j prints nothing before its first interval: keep writing until the tool has printed it and exits
    tool = spawn_rbcc(
        "tool",
        "biolatency",
        "-F",
        "-j",
        "-d",
        root_disk(),
        "3",
        "1",
    )
    with direct_file() as f:
        while tool.poll() is None:
            f.write(WRITES, 4096)
            time.sleep(0.1)
    out, err = tool.communicate(timeout=10)
    assert tool.returncode == 0 and "Traceback" not in err, err
    hists = [ast.literal_eval(line) for line in out.splitlines() if line.startswith("{")]
    writes = sum(d["count"] for h in hists if h["flags"].endswith("Write") for d in h["data"])
    assert writes >= WRITES, out
    assert all(h["val_type"] == "usecs" for h in hists)


@pytest.mark.needs_root
def test_intervals_with_timestamps_end_by_count() -> None:
    with direct_file() as f:
        out, _ = run_interrupted(
            ["tool", "biolatency", "-T", "1", "3"],
            _tracing,
            lambda: f.write(4, 4096),
            lambda out: len(re.findall(r"^\d\d:\d\d:\d\d$", out, re.M)) >= 2,
        )
    assert len(re.findall(r"^\d\d:\d\d:\d\d$", out, re.M)) >= 2, out
    # and it stops by itself after `count` intervals
    done = run_rbcc("tool", "biolatency", "-T", "1", "2", timeout=30)
    assert done.returncode == 0, done.stderr
    assert len(re.findall(r"^\d\d:\d\d:\d\d$", done.stdout, re.M)) == 2, done.stdout
