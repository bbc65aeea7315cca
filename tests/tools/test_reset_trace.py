"""reset_trace: which files it resets on a tree of plain files laid out as tracefs, with and without -F;
live, a private tracefs instance this test leaves with an enabled uprobe event, an enabled tracepoint
with a filter, a pid filter, a line in its buffer and tracing switched off, reset by `--instance`
(and, in the VM only, the top level, whose kprobe and uprobe events every process shares)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from _toolcheck import run_rbcc

from rbcc.tools import reset_trace

FAKE = {
    "kprobe_events": "p:kprobes/p_do_sys_openat2_bcc_42 do_sys_openat2\n",
    "uprobe_events": "",
    "trace": "# tracer: nop\n#\n           <...>-42 [000] ..... 1.0: tracing_mark_write: left over\n",
    "current_tracer": "function\n",
    "set_ftrace_filter": "#### all functions enabled ####\n",
    "set_graph_function": "",
    "set_ftrace_pid": "no pid\n",
    "set_event_pid": "",
    "events/enable": "X\n",
    "events/kprobes/p_do_sys_openat2_bcc_42/enable": "1\n",
    "events/sched/sched_switch/filter": "prev_pid == 1\n",
    "events/sched/sched_switch/enable": "1\n",
    "events/sched/filter": "none\n",
    "tracing_thresh": "0\n",
    "tracing_on": "0\n",
}


@pytest.fixture
def fake_tracefs(tmp_path: Path) -> Path:
    for name, text in FAKE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def changed(root: Path) -> dict[str, str]:
    return {name: (root / name).read_text() for name in FAKE if (root / name).read_text() != FAKE[name]}


def test_resets_what_tools_leave_and_only_notes_the_rest(
    fake_tracefs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reset_trace.Resetter(str(fake_tracefs)).run()
    # the kprobe event is disabled before its removal (the kernel refuses to remove an enabled one)
    assert changed(fake_tracefs) == {
        "kprobe_events": "\n",
        "events/kprobes/p_do_sys_openat2_bcc_42/enable": "0\n",
        "trace": "\n",
    }
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [f"Needed to reset {fake_tracefs}/kprobe_events", f"Needed to reset {fake_tracefs}/trace"]
    noted = [line.split()[4] for line in out[2:]]
    assert noted == [f"{fake_tracefs}/{name}" for name in ("current_tracer", "events/enable", "tracing_on")] + [
        f"{fake_tracefs}/events/sched/sched_switch/filter"
    ]
    assert all("Not resetting (-F to force" in line for line in out[2:])


def test_force_resets_every_file(fake_tracefs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reset_trace.Resetter(str(fake_tracefs), force=True, quiet=True).run()
    assert changed(fake_tracefs) == {
        "kprobe_events": "\n",
        "events/kprobes/p_do_sys_openat2_bcc_42/enable": "0\n",
        "trace": "\n",
        "current_tracer": "nop\n",
        "events/enable": "0\n",
        "events/sched/sched_switch/filter": "0\n",
        "tracing_on": "1\n",
    }
    assert capsys.readouterr().out == ""


def test_an_instance_leaves_the_shared_probe_definitions(fake_tracefs: Path) -> None:
    reset_trace.Resetter(str(fake_tracefs), force=True, quiet=True, top_level=False).run()
    assert "kprobe_events" not in changed(fake_tracefs) and "trace" in changed(fake_tracefs)


def test_is_quiet_and_silent_where_all_is_reset(fake_tracefs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reset_trace.Resetter(str(fake_tracefs), force=True, quiet=True).run()
    (fake_tracefs / "events/sched/sched_switch/filter").write_text("none\n")  # as the kernel shows it cleared
    capsys.readouterr()
    reset_trace.Resetter(str(fake_tracefs), verbose=True).run()
    out = capsys.readouterr().out
    assert "Needed" not in out and "Noticed" not in out and f"Checking {fake_tracefs}/tracing_on" in out


def write(path: Path, line: str, *, append: bool = False) -> None:
    """Write to a tracefs file as `echo >` or `echo >>` does (Python's append mode seeks: tracefs refuses)."""
    fd = os.open(path, os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC))
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def libc_getpid() -> tuple[str, int]:
    from rbcc import _core

    libc = os.path.realpath("/lib/x86_64-linux-gnu/libc.so.6")
    offset = next((off for name, _, off in _core.elf_functions(libc) if name == "getpid"), None)
    if offset is None:
        pytest.skip(f"no getpid in {libc} to place a uprobe event on")
    return libc, offset


@pytest.fixture
def tracing() -> Path:
    from rbcc import _core

    root = Path(_core.tracefs())
    if not (root / "uprobe_events").exists():
        pytest.skip("no uprobe_events in tracefs (CONFIG_UPROBE_EVENTS unset)")
    return root


@pytest.fixture
def uprobe_event(tracing: Path) -> Iterator[str]:
    """A uprobe event on libc's getpid, defined (for every instance) by this test: its group/name."""
    libc, offset = libc_getpid()
    event = f"rbcc_reset_{os.getpid()}/getpid"
    write(tracing / "uprobe_events", f"p:{event} {libc}:{offset:#x}", append=True)
    try:
        yield event
    finally:
        if event in (tracing / "uprobe_events").read_text():
            write(tracing / "events" / event / "enable", "0")
            write(tracing / "uprobe_events", f"-:{event}", append=True)


@pytest.fixture
def instance(tracing: Path) -> Iterator[Path]:
    """A tracefs instance of this test's own (its buffer, events and switches touch no one else's)."""
    path = tracing / "instances" / f"rbcc_reset_{os.getpid()}"
    path.mkdir()
    try:
        yield path
    finally:
        write(path / "events" / "enable", "0")
        path.rmdir()


def leave_state_behind(inst: Path, event: str) -> None:
    """What a crashed tool and a forgotten ftrace session might leave in ``inst``."""
    write(inst / "events" / "syscalls" / "sys_enter_getppid" / "filter", f"common_pid == {os.getpid()}")
    write(inst / "events" / "syscalls" / "sys_enter_getppid" / "enable", "1")
    write(inst / "events" / event / "enable", "1")
    write(inst / "set_event_pid", str(os.getpid()))
    write(inst / "trace_marker", "left over by a tool")
    os.getpid()  # the uprobe event records this call
    write(inst / "tracing_on", "0")
    assert "left over by a tool" in (inst / "trace").read_text()
    assert "getpid" in (inst / "trace").read_text()


@pytest.mark.needs_root
def test_an_instance_is_reset(tracing: Path, uprobe_event: str, instance: Path) -> None:
    # (the instance goes first at teardown: an event enabled there could not be removed)
    leave_state_behind(instance, uprobe_event)
    name = instance.name

    # without -F: the buffer is emptied; the rest is noted, and left as it is
    done = run_rbcc("tool", "reset_trace", "--instance", name)
    assert done.returncode == 0, done.stderr
    assert "tracing_mark_write" not in (instance / "trace").read_text()
    assert f"Needed to reset {instance}/trace" in done.stdout.splitlines()
    noted = {line.split()[4] for line in done.stdout.splitlines() if line.startswith("Noticed")}
    assert noted == {
        f"{instance}/{f}"
        for f in ("set_event_pid", "events/enable", "tracing_on", "events/syscalls/sys_enter_getppid/filter")
    }, done.stdout
    assert (instance / "events" / uprobe_event / "enable").read_text() == "1\n"

    # with -F: every event of the instance is disabled, its filters gone, tracing on again
    done = run_rbcc("tool", "reset_trace", "-F", "--instance", name)
    assert done.returncode == 0, done.stderr
    assert (instance / "events" / uprobe_event / "enable").read_text() == "0\n"
    assert (instance / "events" / "syscalls" / "sys_enter_getppid" / "enable").read_text() == "0\n"
    assert (instance / "events" / "syscalls" / "sys_enter_getppid" / "filter").read_text() == "none\n"
    assert (instance / "events" / "enable").read_text() == "0\n"
    assert (instance / "set_event_pid").read_text() == ""
    assert (instance / "tracing_on").read_text() == "1\n"
    # the uprobe event is everyone's: an instance's reset leaves its definition
    assert uprobe_event in (tracing / "uprobe_events").read_text()

    # and now there is nothing left to say
    done = run_rbcc("tool", "reset_trace", "--instance", name)
    assert [line for line in done.stdout.splitlines() if "reset" in line or "Noticed" in line] == [], done.stdout


@pytest.mark.needs_root
def test_a_missing_instance_is_one_line() -> None:
    done = run_rbcc("tool", "reset_trace", "--instance", f"rbcc_none_{os.getpid()}")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("reset_trace: no tracefs instance") and len(done.stderr.splitlines()) == 1


@pytest.mark.needs_root
@pytest.mark.skipif(
    not os.environ.get("RBCC_IN_VM"),
    reason="resets the top level of tracefs, which every tracer on this machine shares: "
    "runs in the VM of make test-kernels only",
)
def test_the_top_level_is_reset_with_its_uprobe_events(tracing: Path) -> None:
    libc, offset = libc_getpid()
    event = f"rbcc_reset_{os.getpid()}/getpid"
    write(tracing / "uprobe_events", f"p:{event} {libc}:{offset:#x}", append=True)
    write(tracing / "events" / event / "enable", "1")
    write(tracing / "trace_marker", "left over by a tool")
    done = run_rbcc("tool", "reset_trace")
    assert done.returncode == 0, done.stderr
    assert f"Needed to reset {tracing}/uprobe_events" in done.stdout.splitlines()
    assert event not in (tracing / "uprobe_events").read_text()
    assert "left over by a tool" not in (tracing / "trace").read_text()
    # it was enabled: disabled first, then removed
    assert not (tracing / "events" / event).exists()


def test_bccs_name_with_a_hyphen_runs_it_too() -> None:
    done = run_rbcc("tool", "reset-trace", "-h")
    assert done.returncode == 0 and done.stdout.startswith("usage: reset_trace"), done.stderr
