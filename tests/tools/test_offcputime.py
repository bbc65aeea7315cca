"""offcputime: the C for its options, and live runs that see the stacks a sleeping child blocks in,
with the time it sleeps."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _bpfutil import run_interrupted
from _schedwork import sleeper
from _toolcheck import run_rbcc, text_of

from rbcc.tools import offcputime

COMM = "rbcc-offcpu"
FOLDED = re.compile(r"^([^;]+(?:;[^;]+)*) (\d+)$")


def _text(*argv: str) -> str:
    return text_of(offcputime, *argv)


def test_options_in_the_c() -> None:
    plain = _text()
    assert "if ((1) && (1))" in plain
    assert "delta < 1 || delta > 18446744073709551615ULL" in plain
    assert "BPF_STACK_TRACE(stack_traces, 1024);" in plain
    assert "stack_traces.get_stackid(ctx, BPF_F_USER_STACK)" in plain and "stack_traces.get_stackid(ctx, 0)" in plain
    assert "if ((tgid == 185) && (1))" in _text("-p", "185")
    assert "if ((pid == 188) && (1))" in _text("-t", "188")
    assert "!(prev->flags & PF_KTHREAD)" in _text("-u") and "(prev->flags & PF_KTHREAD)" in _text("-k")
    assert "delta < 1000 || delta > 10000ULL" in _text("-m", "1000", "-M", "10000")
    assert "prev->__state & 2" in _text("--state", "2") and "prev->__state == 0" in _text("--state", "0")
    assert "b.key.user_stack_id = -1;" in _text("-K") and "b.key.kernel_stack_id = -1;" in _text("-U")


@pytest.mark.parametrize("argv", [["-p", "1", "-t", "2"], ["-u", "-k"], ["-U", "-K"], ["-m", "0"], ["0"]])
def test_conflicting_or_bad_options_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        offcputime.build_parser().parse_args(argv)


def test_user_stacks_of_kernel_threads_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert offcputime.main(["-k", "-U"]) == 2
    assert capsys.readouterr().err == "ERROR: Displaying user stacks for kernel threads doesn't make sense.\n"


@pytest.mark.needs_root
def test_folded_kernel_stacks_of_a_sleeping_process_for_a_duration() -> None:
    with sleeper(10**6, 0.01, comm=COMM) as kid:
        kid.go()
        out = run_rbcc("tool", "offcputime", "-f", "-K", "-p", str(kid.pid), "2")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    rows = []
    for line in out.stdout.splitlines():  # -f: no header, only "comm;frame;... microseconds"
        m = FOLDED.match(line)
        assert m, f"not a folded stack line: {line!r}"
        rows.append((m[1].split(";"), int(m[2])))
    assert rows and {frames[0] for frames, _ in rows} == {COMM}, out.stdout
    total = sum(us for _, us in rows)
    asleep = sum(us for frames, us in rows if "do_nanosleep" in frames)
    # two seconds traced, the child asleep nearly all of it
    assert total >= 1_000_000 and asleep >= 0.8 * total, out.stdout
    # the stacks start where the thread blocked, not in the tracepoint's BPF dispatch
    assert all(frames[-1] == "__schedule" for frames, _ in rows if "do_nanosleep" in frames), out.stdout


@pytest.mark.needs_root
def test_delimited_user_and_kernel_stacks_of_a_thread() -> None:
    with sleeper(10**6, 0.01, comm=COMM) as kid:
        kid.go()
        deadline: list[float] = []
        # the child lives on while the tool prints, so its user addresses can be symbolized
        out, _ = run_interrupted(
            ["tool", "offcputime", "-d", "-t", str(kid.pid)],
            lambda h: h == f"Tracing off-CPU time (us) of TID {kid.pid} by user + kernel stack... Hit Ctrl-C to end.\n",
            lambda: deadline.append(time.monotonic() + 1.5),
            lambda out: time.monotonic() > deadline[0],
        )
    blocks = [b.splitlines() for b in out.split("\n\n") if f"{COMM} ({kid.pid})" in b]
    assert blocks and len(blocks) == len([b for b in out.split("\n\n")[1:] if b.strip()]), out
    sleeps = [b for b in blocks if "    do_nanosleep" in b]
    assert sleeps, out
    for b in sleeps:
        kernel, user = b[: b.index("    --")], b[b.index("    --") + 1 : -2]
        assert "    hrtimer_nanosleep" in kernel and "    clock_nanosleep" in user, out
    assert sum(int(b[-1]) for b in sleeps) >= 1_000_000, out  # microseconds asleep in 1.5 s


@pytest.mark.needs_root
def test_min_block_time_leaves_out_shorter_sleeps() -> None:
    with sleeper(30, 0.005, comm=COMM) as kid:
        out, _ = run_interrupted(
            ["tool", "offcputime", "-m", "1000000", "-p", str(kid.pid)],
            lambda h: h.startswith(f"Tracing off-CPU time (us) of PID {kid.pid}"),
            kid.go,
            lambda out: kid.finished(),
        )
    assert out.splitlines()[1:] == [""], out  # its 5 ms sleeps are all under the 1 s minimum


@pytest.mark.needs_root
def test_svg_is_a_blue_off_cpu_flame_graph_of_the_sleeps(tmp_path: Path) -> None:
    svg = tmp_path / "off.svg"
    with sleeper(10**6, 0.01, comm=COMM) as kid:
        kid.go()
        out = run_rbcc("tool", "offcputime", "-K", "-p", str(kid.pid), "--svg", str(svg), "2")
    assert out.returncode == 0 and f"written to {svg}" in out.stderr, out.stderr
    assert f"{COMM} ({kid.pid})" in out.stdout  # the usual output as well
    ns = "{http://www.w3.org/2000/svg}"
    frames = {}
    for g in ET.parse(svg).getroot().iter(f"{ns}g"):
        title, rect = g.find(f"{ns}title"), g.find(f"{ns}rect")
        if title is not None and rect is not None and title.text:
            frames[title.text.rsplit(" (", 1)[0]] = (title.text, rect.attrib["fill"])
    assert COMM in frames and "do_nanosleep" in frames, frames
    assert " us, " in frames["do_nanosleep"][0]  # counted in microseconds
    r, g, b = map(int, frames["do_nanosleep"][1][4:-1].split(","))
    assert b > r and b > g  # Gregg's blue for time off the CPU
