#!/usr/bin/env python3
"""reset_trace: reset tracefs state a crashed tracing tool left behind (bcc's reset-trace).

What tracing tools use is reset whenever it is not as a fresh kernel has it: the kprobe and uprobe
events defined in kprobe_events and uprobe_events (the groups those events belong to are disabled
first, since an enabled event cannot be removed) and the trace buffer. The rest of tracefs, which
other tracers (ftrace, perf, trace-cmd) may be using on purpose, is only checked, with a note for each
file that differs, unless -F (force) resets it too: current_tracer, set_ftrace_filter,
set_graph_function, set_ftrace_pid, set_event_pid, events/enable, every event's filter,
tracing_thresh, tracing_on.

--instance NAME resets the tracefs instance ``instances/NAME`` instead of the top level: its own
buffer, events, filters and switches. kprobe and uprobe events are defined once for all instances,
so they are left as they are there (reset them at the top level). tracefs is mounted (by rbcc) where
it is not yet; the tool loads no BPF program.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from rbcc._tools import common
from rbcc.errors import BPFError

__all__ = ["Resetter", "bpf_text", "build_parser", "main"]

EXAMPLES = """examples:
    rbcc tool reset_trace                 # reset what tracing tools left behind
    rbcc tool reset_trace -v              # saying what it checks, with each file before and after
    rbcc tool reset_trace -F              # reset every tracing file, even ftrace's (stops other tracers)
    rbcc tool reset_trace -F --instance t # reset the tracefs instance instances/t
"""

# Files tracing tools write (reset whenever they differ): (file, what it should read)
TOOL_FILES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kprobe_events", ("",)),
    ("uprobe_events", ("",)),
    ("trace", ("",)),
)
GLOBAL_FILES = ("kprobe_events", "uprobe_events")  # one for all instances: the top level's
# Files other tracers may use on purpose (reset with -F only): (file, value to write, what it should read;
# set_ftrace_pid read "no pid" before 5.x, and reads nothing now)
OTHER_FILES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("current_tracer", "nop", ("nop",)),
    ("set_ftrace_filter", "", ("",)),
    ("set_graph_function", "", ("",)),
    ("set_ftrace_pid", "", ("", "no pid")),
    ("set_event_pid", "", ("",)),
    ("events/enable", "0", ("0",)),
    ("tracing_thresh", "0", ("0",)),
    ("tracing_on", "1", ("1",)),
)


def build_parser() -> argparse.ArgumentParser:
    p = common.parser("reset_trace", "Reset the state of tracing, disabling all tracing", EXAMPLES)
    p.add_argument("-F", "--force", action="store_true", help="force: reset all tracing files")
    p.add_argument("-v", "--verbose", action="store_true", help="verbose: print details while working")
    p.add_argument("-q", "--quiet", action="store_true", help="quiet: no output")
    p.add_argument(
        "--instance",
        metavar="NAME",
        help="reset the tracefs instance instances/NAME, not the top level (kprobe/uprobe events, "
        "shared by all instances, are then left alone)",
    )
    return p


def bpf_text(args: argparse.Namespace) -> str:
    """reset_trace loads no BPF program: its C is empty (``--ebpf`` prints nothing)."""
    return ""


def settings(text: str) -> str:
    """A tracefs file's setting: its lines but the comments (``#### all functions enabled ####``)."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("#")).strip()


def numbered(text: str) -> str:
    """The file's lines numbered, as ``cat -n`` shows them."""
    return "".join(f"{n:6d}\t{line}\n" for n, line in enumerate(text.splitlines(), 1))


@dataclass
class Resetter:
    """Resets the tracefs directory ``root`` (the top level, or an instance's directory)."""

    root: str
    force: bool = False
    verbose: bool = False
    quiet: bool = False
    top_level: bool = True
    warnings: int = 0

    def say(self, line: str) -> None:
        if not self.quiet:
            print(line, flush=True)

    def detail(self, line: str) -> None:
        if self.verbose:
            print(line, flush=True)

    def warn(self, line: str) -> None:
        self.warnings += 1
        print(line, file=sys.stderr, flush=True)

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def read(self, name: str) -> str | None:
        """The file's text; None (with a warning) where the kernel refuses to show it (ftrace's files
        while ftrace is disabled, ...)."""
        try:
            with open(self.path(name)) as f:
                return f.read()
        except OSError as e:
            self.warn(f"WARNING: cannot read {self.path(name)}: {e.strerror}. Skipping.")
            return None

    def write(self, name: str, value: str) -> bool:
        """Write ``value`` as ``echo VALUE > FILE`` does (truncating); a refusal is a warning."""
        try:
            with open(self.path(name), "w") as f:
                f.write(value + "\n")
        except OSError as e:
            self.warn(f"WARNING: could not write {value!r} to {self.path(name)}: {e.strerror}. Continuing.")
            return False
        return True

    def reset(self, name: str, value: str, expected: tuple[str, ...]) -> None:
        """Write ``value`` to ``name`` unless it already reads one of ``expected``."""
        if not os.access(self.path(name), os.W_OK):
            self.warn(f"WARNING: file {self.path(name)} not writable/exists. Skipping.")
            return
        self.detail(f"Checking {self.path(name)}")
        before = self.read(name)
        if before is None or settings(before) in expected:
            return
        self.say(f"Needed to reset {self.path(name)}")
        self.detail(f"{name}, before (line enumerated):")
        self.detail(numbered(before).rstrip("\n"))
        if name in GLOBAL_FILES:
            self.disable_dynamic_events(before)
        self.write(name, value)
        if self.verbose:
            self.detail(f"{name}, after (line enumerated):")
            self.detail(numbered(self.read(name) or "").rstrip("\n"))
            self.detail("")

    def disable_dynamic_events(self, definitions: str) -> None:
        """Disable the events ``definitions`` (kprobe_events' or uprobe_events' lines) define, where
        this tracefs enabled them: the kernel refuses to remove an enabled event."""
        for line in settings(definitions).splitlines():
            kind_name = line.split()[0] if line.split() else ""
            _, _, event = kind_name.partition(":")
            if "/" in event and os.path.exists(self.path(f"events/{event}/enable")):
                self.write(f"events/{event}/enable", "0")

    def check(self, name: str, value: str, expected: tuple[str, ...]) -> None:
        """Note that ``name`` does not read one of ``expected``; reset it to ``value`` under -F."""
        if not os.path.exists(self.path(name)):
            self.warn(f"WARNING: file {self.path(name)} doesn't exist. Skipping.")
            return
        if self.force:
            self.reset(name, value, expected)
            return
        if self.quiet:
            return
        self.detail(f"Checking {self.path(name)}")
        contents = self.read(name)
        if contents is not None and settings(contents) not in expected:
            self.say(
                f"Noticed unrelated tracing file {self.path(name)} isn't set as expected. "
                "Not resetting (-F to force, -v for verbose)."
            )
            self.detail(f"Contents of {name} is (line enumerated):")
            self.detail(numbered(contents).rstrip("\n"))
            self.detail(f'Expected "{expected[0]}".')

    def check_filters(self) -> None:
        """Every event filter (events/GROUP/filter, events/GROUP/EVENT/filter) not "none"; reset with -F."""
        events = self.path("events")
        for top, dirs, files in os.walk(events):
            dirs.sort()
            if "filter" not in files or top == events:
                continue
            name = os.path.relpath(os.path.join(top, "filter"), self.root)
            contents = self.read(name)
            # an event's cleared filter reads "none"; a group's, only comments
            if contents is not None and settings(contents) not in ("none", ""):
                self.check(name, "0", ("none", ""))

    def run(self) -> None:
        self.detail("Resetting tracing state...")
        self.detail("")
        for name, expected in TOOL_FILES:
            if name in GLOBAL_FILES and not self.top_level:
                self.detail(f"Leaving {name} alone: it is the top level's, for all instances")
                continue
            self.reset(name, "", expected)
        for name, value, accepted in OTHER_FILES:
            self.check(name, value, accepted)
        self.check_filters()
        self.detail("")
        self.detail("Done.")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return common.guard("reset_trace", lambda: run(args))


def run(args: argparse.Namespace) -> int:
    if args.ebpf:
        print(bpf_text(args))
        return 0
    from rbcc import _core

    root = _core.tracefs()
    if args.instance:
        if "/" in args.instance or args.instance in (".", ".."):
            raise BPFError(f"no tracefs instance named {args.instance!r}")
        root = os.path.join(root, "instances", args.instance)
        if not os.path.isdir(root):
            raise BPFError(f"no tracefs instance {root} (make one with mkdir)")
    Resetter(root, force=args.force, verbose=args.verbose, quiet=args.quiet, top_level=not args.instance).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
