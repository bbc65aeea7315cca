"""tplist: kernel tracepoints with their fields (tracefs), and the USDT probes of a program this test
builds and of Debian's python3, with their sites and arguments."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from _bpfutil import build_c_program
from _toolcheck import run_rbcc

from rbcc.tools import tplist

# two probes, one of them at two sites (so -v counts 2 locations), with arguments of three sizes
PROBES_C = r"""
#include <sys/sdt.h>
#include <stdio.h>

int main(int argc, char **argv) {
    long big = argc * 1000L;
    short small = (short)argc;
    DTRACE_PROBE3(rbcctest, widget__made, big, small, argv[0]);
    if (argc > 5)
        DTRACE_PROBE3(rbcctest, widget__made, big + 1, small, argv[0]);
    DTRACE_PROBE(rbcctest, all__done);
    puts("ok");
    return 0;
}
"""

SWITCH_FORMAT = """name: sched_switch
ID: 316
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;
\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;

print fmt: "prev_comm=%s", REC->prev_comm
"""


def test_fields_are_the_format_without_the_common_ones() -> None:
    assert tplist.format_fields(SWITCH_FORMAT) == ["    char prev_comm[16];", "    pid_t prev_pid;"]


def test_tracepoints_are_filtered_by_the_glob(tmp_path: Path) -> None:
    for cat, ev in [("sched", "sched_switch"), ("sched", "sched_wakeup"), ("block", "block_rq_issue")]:
        (tmp_path / cat / ev).mkdir(parents=True)
    (tmp_path / "enable").write_text("0")  # tracefs' files beside the categories are not tracepoints
    assert tplist.tracepoints(str(tmp_path), "sched:*") == [("sched", "sched_switch"), ("sched", "sched_wakeup")]
    assert len(tplist.tracepoints(str(tmp_path), None)) == 3
    assert tplist.bpf_text(tplist.build_parser().parse_args([])) == ""


@pytest.mark.needs_root
def test_lists_sched_switch_and_its_fields() -> None:
    done = run_rbcc("tool", "tplist", "-v", "sched:sched_switch")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "sched:sched_switch"
    for field in ["    char prev_comm[16];", "    pid_t prev_pid;", "    pid_t next_pid;", "    int next_prio;"]:
        assert field in lines[1:], done.stdout
    assert not any("common_" in line for line in lines)
    listed = run_rbcc("tool", "tplist", "sched:*").stdout.splitlines()
    assert "sched:sched_switch" in listed and "sched:sched_wakeup" in listed
    assert all(line.startswith("sched:") for line in listed)


@pytest.fixture(scope="module")
def probes_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cpp = shutil.which("cpp")
    if cpp and subprocess.run([cpp, "-x", "c", "-"], input=b"#include <sys/sdt.h>\n", capture_output=True).returncode:
        pytest.skip("sys/sdt.h is missing (apt-get install systemtap-sdt-dev)")
    return build_c_program(tmp_path_factory.mktemp("tplist"), "widgets", PROBES_C, "-O1")


def test_lists_a_programs_own_probes_with_their_arguments(probes_binary: Path) -> None:
    done = run_rbcc("tool", "tplist", "-l", str(probes_binary))
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == [
        f"{probes_binary} rbcctest:all__done",
        f"{probes_binary} rbcctest:widget__made",
    ]
    verbose = run_rbcc("tool", "tplist", "-l", str(probes_binary), "-v", "*widget*").stdout.splitlines()
    assert verbose[0].startswith("rbcctest:widget__made [sema 0x0]")
    assert verbose[1:] == ["  2 location(s)", "  3 argument(s)"]
    sites = run_rbcc("tool", "tplist", "-l", str(probes_binary), "-vv", "*widget*").stdout.splitlines()
    locations = [line for line in sites if line.startswith("  location #")]
    assert [line.split()[:3] for line in locations] == [
        ["location", "#1", str(probes_binary)],
        ["location", "#2", str(probes_binary)],
    ]
    args = [line.strip().split(" @ ")[0] for line in sites if line.startswith("    argument #")]
    # a long, a short and a pointer, at each of the two sites
    expected = ["argument #1 8 signed bytes", "argument #2 2 signed bytes", "argument #3 8 unsigned bytes"]
    assert args == expected * 2, sites


def test_lists_python3s_probes() -> None:
    python = os.path.realpath("/usr/bin/python3")
    if not os.path.exists(python):
        pytest.skip("no /usr/bin/python3: Debian's python3 (built with its USDT probes) is not installed")
    done = run_rbcc("tool", "tplist", "-l", python)
    assert done.returncode == 0, done.stderr
    names = {line.split()[1] for line in done.stdout.splitlines()}
    if not names:
        pytest.skip(f"{python} has no USDT probes (built without --with-dtrace)")
    assert {"python:function__entry", "python:function__return", "python:gc__start", "python:gc__done"} <= names
    verbose = run_rbcc("tool", "tplist", "-l", python, "-v", "python:function__entry").stdout.splitlines()
    assert verbose[0].startswith("python:function__entry [sema 0x") and verbose[2] == "  3 argument(s)", verbose


def test_lists_the_probes_of_every_module_a_process_maps() -> None:
    python = os.path.realpath("/usr/bin/python3")
    if not os.path.exists(python):
        pytest.skip("no /usr/bin/python3: Debian's python3 (built with its USDT probes) is not installed")
    # a python3 that loads nothing of its own: its probes are the executable's
    child = subprocess.Popen([python, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        done = run_rbcc("tool", "tplist", "-p", str(child.pid), "*function__*")
    finally:
        child.communicate(b"")
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == [f"{python} python:function__entry", f"{python} python:function__return"]
