"""biolatpcts: the percentiles it reads from its three histograms, the C for each start of the
latency, and live runs that see the test's own O_DIRECT writes to the root disk."""

from __future__ import annotations

import json
import re
import signal
import time

import pytest
from _blockio import direct_file, root_disk
from _bpfutil import run_interrupted
from _toolcheck import run_rbcc, spawn_rbcc, text_of

from rbcc.tools import biolatpcts


def test_percentiles_come_from_the_finest_histogram_that_holds_the_request() -> None:
    # 50 requests at 20-30 us, 40 at 5-6 ms, 10 at 300-400 ms
    h100, h1, h10 = [0] * 100, [0] * 100, [0] * 100
    h100[0], h100[3] = 90, 10
    h1[0], h1[5] = 50, 40
    h10[2] = 50
    got = biolatpcts.percentiles(["1", "50", "51", "90", "91", "100"], h100, h1, h10)
    assert got == [25, 25, 5500, 5500, 350000, 350000]
    assert biolatpcts.percentiles(["50"], [0] * 100, [0] * 100, [0] * 100) == [0]
    assert [biolatpcts.format_usec(v) for v in (0, 25, 5500, 350000, 2500000)] == [
        "-",
        "25us",
        "5.5ms",
        "350ms",
        "2.5s",
    ]


def test_options_shape_the_program() -> None:
    text = text_of(biolatpcts, "8:16")
    assert "u64 since = rq->io_start_time_ns;" in text and "disk->major != 8 || disk->first_minor != 16" in text
    assert "rq->alloc_time_ns" in text_of(biolatpcts, "-w", "from-rq-alloc", "8:16")
    assert "rq->start_time_ns" in text_of(biolatpcts, "-w", "after-rq-alloc", "8:16")
    assert "case 3: row = 2; break;" in text  # REQ_OP_DISCARD is the third row
    args = biolatpcts.build_parser().parse_args(["-p", "99,50,99.9", root_disk()])
    assert args.pcts == ["50", "99", "99.9"] and args.dev[0] == root_disk()
    for bad in (["-p", "101", "8:0"], ["no-such-disk-rbcc"]):
        with pytest.raises(SystemExit):
            biolatpcts.build_parser().parse_args(bad)


@pytest.mark.needs_root
def test_json_reports_see_the_tests_writes() -> None:
    def writes_seen(out: str) -> bool:
        return any(json.loads(line)["write"]["100"] > 0 for line in out.splitlines() if line.startswith("{"))

    tool = spawn_rbcc("tool", "biolatpcts", "-i", "1", "-j", "-p", "10,50,90,100", root_disk())
    try:
        lines: list[str] = []
        assert tool.stdout is not None
        with direct_file() as f:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                f.write(16, 4096)
                line = tool.stdout.readline()
                lines.append(line)
                if writes_seen(line):
                    break
    finally:
        tool.send_signal(signal.SIGINT)
        _, err = tool.communicate(timeout=30)
    assert "Traceback" not in err, err
    reports = [json.loads(line) for line in lines if line.startswith("{")]
    writes = [r["write"] for r in reports if r["write"]["100"] > 0]
    assert writes, lines
    for w in writes:
        values = [w[p] for p in ("10", "50", "90", "100")]
        assert 0 < values[0] and values == sorted(values) and values[-1] < 10, w  # seconds
    assert set(reports[0]) == {"read", "write", "discard", "flush"}


@pytest.mark.needs_root
def test_infinite_interval_reports_when_ready_and_at_exit() -> None:
    disk = root_disk()
    with direct_file() as f:
        out, _ = run_interrupted(
            ["tool", "biolatpcts", "-i", "-1", disk],
            lambda h: h == "\n",
            lambda: f.write(16, 4096),
        )
    tables = re.findall(rf"^{re.escape(disk)}\s+1\s+5\s+10 .*\n^read .*\n^write (.*)\n", out, re.M)
    # the one printed when ready, and the one at exit, which holds the writes
    assert len(tables) == 2, out
    assert re.search(r"\d+(us|ms)", tables[1]), out
    # -i 0 exits once started, printing nothing
    done = run_rbcc("tool", "biolatpcts", "-i", "0", disk)
    assert done.returncode == 0 and done.stdout == "", done.stderr
