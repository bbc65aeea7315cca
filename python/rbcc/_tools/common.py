"""What rbcc's tools share: bcc's common options, the `--ebpf` path, the run loop that ends on Ctrl-C,
interval/count output, and one-line errors instead of tracebacks.

A tool's ``main(argv)`` parses with :func:`parser`, builds its C with a pure function, then calls
:func:`load` (which prints the C and returns None under ``--ebpf``), and ends through :func:`guard`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .. import BPF
from ..errors import BPFError

PID_FILTER_ALL = "0"  # a C condition that keeps every event


def parser(prog: str, description: str, examples: str) -> argparse.ArgumentParser:
    """bcc's tool parser: description, an examples epilog kept as written, and ``--ebpf``."""
    p = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=examples,
    )
    p.add_argument("--ebpf", action="store_true", help=argparse.SUPPRESS)
    return p


def add_containers(p: argparse.ArgumentParser) -> None:
    """bcc's --cgroupmap/--mntnsmap: keep events of the cgroups / mount namespaces in a pinned map."""
    p.add_argument("--cgroupmap", help="trace cgroups in this BPF map only")
    p.add_argument("--mntnsmap", help="trace mount namespaces in this BPF map only")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def pid_condition(field: str, pid: int | None) -> str:
    """A C condition on ``field`` that is true for events to *skip* (bcc's FILTER style)."""
    return f"{field} != {int(pid)}" if pid is not None else PID_FILTER_ALL


def load(
    args: argparse.Namespace,
    text: str,
    *,
    check: Callable[[], None] | None = None,
    print_text: bool = False,
    **kwargs: Any,
) -> BPF | None:
    """The tool's BPF object; under ``--ebpf``, print the C instead and return None. ``print_text`` (a
    tool's -D/--debug) prints the C before loading it too, once under ``--ebpf``. ``check`` runs just
    before loading: it raises the one-line error for what the kernel lacks (tracepoints, ...), which
    printing the C does not need."""
    if getattr(args, "ebpf", False):
        print(text)
        return None
    if print_text:
        print(text)
    if check is not None:
        check()
    return BPF(text=text, **kwargs)


def guard(prog: str, body: Callable[[], int | None]) -> int:
    """Run a tool's body: Ctrl-C ends it quietly (status 0), and a BPFError ends it with one line that
    names what the kernel refused (status 1). A closed pipe (``tool | head``) ends it quietly."""
    try:
        return int(body() or 0)
    except KeyboardInterrupt:
        return 0
    except BPFError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # stdout is gone; point it at /dev/null so the interpreter's final flush does not fail too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def poll_events(b: BPF, *, ring: bool = False, timeout: int = -1, until: Callable[[], bool] | None = None) -> None:
    """Deliver events to the open perf (or ring) buffers until Ctrl-C, or until ``until()`` is true."""
    poll = b.ring_buffer_poll if ring else b.perf_buffer_poll
    while until is None or not until():
        poll(timeout if until is None else 100)


def poll_events_for(b: BPF, seconds: float | None) -> None:
    """:func:`poll_events` until Ctrl-C, or for ``seconds`` when given (bcc's -d, total duration)."""
    if not seconds:
        poll_events(b)
        return
    deadline = time.monotonic() + seconds
    poll_events(b, until=lambda: time.monotonic() >= deadline)


def intervals(interval: float, count: int | None) -> Iterator[bool]:
    """Sleep ``interval`` seconds, ``count`` times (forever if None), yielding after each sleep whether
    it is the last. Ctrl-C during a sleep yields once more, as the last, so the tool prints its final
    totals, as bcc's tools do."""
    done = 0
    while count is None or done < count:
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            yield True
            return
        done += 1
        yield count is not None and done >= count


def until_interrupted() -> None:
    """Sleep until Ctrl-C (for tools that print only at the end), and return."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def first_of(candidates: Sequence[tuple[str, Callable[[], bool]]]) -> str | None:
    """The first probe source whose check passes, in the order given (the tool's preference)."""
    for name, available in candidates:
        if available():
            return name
    return None


def strftime_now() -> str:
    return time.strftime("%H:%M:%S")
