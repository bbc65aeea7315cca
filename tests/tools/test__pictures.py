"""The tools' pictures (rbcc._tools.pictures): --svg and --heatmap refused at once where they cannot be
written, and live runs: runqlat's and biolatency's heatmaps, stackcount's and trace's flame graphs of
the test's own syscalls. (profile's and offcputime's --svg are tested with those tools.)"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _blockio import direct_file
from _bpfutil import run_interrupted
from _toolcheck import run_rbcc

from rbcc.tools import biolatency, profile, runqlat, stackcount, trace

NS = "{http://www.w3.org/2000/svg}"


def _frames(svg: Path) -> dict[str, str]:
    """Each frame's name → its tooltip, from a flame graph SVG (which must parse as XML)."""
    out = {}
    for g in ET.parse(svg).getroot().iter(f"{NS}g"):
        title = g.find(f"{NS}title")
        if title is not None and title.text and g.find(f"{NS}rect") is not None:
            out[title.text.rsplit(" (", 1)[0]] = title.text
    return out


def test_svg_and_heatmap_files_are_checked_before_tracing(tmp_path: Path) -> None:
    assert profile.build_parser().parse_args(["--svg", str(tmp_path / "a.svg")]).svg == str(tmp_path / "a.svg")
    for argv in (["--svg", str(tmp_path / "a.png")], ["--svg", str(tmp_path / "missing" / "a.svg")]):
        with pytest.raises(SystemExit):
            profile.build_parser().parse_args(argv)
    assert runqlat.build_parser().parse_args(["--heatmap", str(tmp_path / "h.svg")]).heatmap_interval == 1.0
    with pytest.raises(SystemExit):
        biolatency.build_parser().parse_args(["--heatmap", str(tmp_path / "h.jpg")])


@pytest.mark.parametrize("tool", [runqlat, biolatency])
def test_a_zero_heatmap_interval_is_refused(tool: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        tool.main(["--heatmap", str(tmp_path / "h.png"), "--heatmap-interval", "0"])  # type: ignore[attr-defined]
    assert "--heatmap-interval must be positive" in capsys.readouterr().err


def test_trace_draws_stacks_only_when_it_takes_them(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        trace.main(["--svg", str(tmp_path / "t.svg"), "t:syscalls:sys_enter_getppid"])
    assert "--svg draws the events' stacks: it needs -K or -U" in capsys.readouterr().err
    assert stackcount.build_parser().parse_args(["--svg", str(tmp_path / "s.svg"), "x"]).svg


@pytest.mark.needs_root
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_runqlat_heatmap_has_a_column_per_interval(tmp_path: Path, suffix: str) -> None:
    picture = tmp_path / f"runq{suffix}"
    out = run_rbcc("tool", "runqlat", "--heatmap", str(picture), "--heatmap-interval", "0.5", "1", "2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("usecs") == 2  # its two histograms as ever
    m = re.search(r"runqlat: heatmap of (\d+) x 0.5s written to (.*)$", out.stderr, re.M)
    assert m and m[2] == str(picture), out.stderr
    assert 3 <= int(m[1]) <= 5  # 2 s in half-second columns
    if suffix == ".png":
        assert picture.read_bytes().startswith(b"\x89PNG")
    else:
        assert ET.parse(picture).getroot().tag == f"{NS}svg"


@pytest.mark.needs_root
def test_biolatency_heatmap_of_the_test_s_writes(tmp_path: Path) -> None:
    picture = tmp_path / "io.png"
    with direct_file() as f:
        out, err = run_interrupted(
            ["tool", "biolatency", "--heatmap", str(picture)],
            lambda h: h.startswith("Tracing block device I/O"),
            lambda: f.write(24, 4096),
        )
    assert "usecs" in out and f"written to {picture}" in err, err
    assert picture.read_bytes().startswith(b"\x89PNG")


@pytest.mark.needs_root
def test_stackcount_svg_of_the_test_s_own_syscalls(tmp_path: Path) -> None:
    svg = tmp_path / "sc.svg"

    def workload() -> None:
        for _ in range(30):
            os.getppid()

    _, err = run_interrupted(
        ["stackcount", "-K", "-p", str(os.getpid()), "--svg", str(svg), "t:syscalls:sys_enter_getppid"],
        lambda h: h.startswith("Tracing 1 functions for"),
        workload,
    )
    assert "stackcount: flame graph of 30 calls written to" in err, err
    frames = _frames(svg)
    assert "do_syscall_64" in frames and frames["do_syscall_64"].startswith("do_syscall_64 (30 calls"), frames


@pytest.mark.needs_root
def test_trace_svg_counts_an_event_per_stack(tmp_path: Path) -> None:
    svg = tmp_path / "tr.svg"

    def workload() -> None:
        for _ in range(5):
            os.getppid()

    out, err = run_interrupted(
        ["trace", "-K", "-p", str(os.getpid()), "--svg", str(svg), "t:syscalls:sys_enter_getppid"],
        lambda h: h.startswith("PID"),
        workload,
        lambda out: out.count("sys_enter_getppid") >= 5,
    )
    assert "trace: flame graph of 5 events written to" in err, (out, err)
    frames = _frames(svg)
    assert frames["do_syscall_64"].startswith("do_syscall_64 (5 events"), frames
