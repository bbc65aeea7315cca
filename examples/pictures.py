#!/usr/bin/env python3
"""The README's pictures, drawn by rbcc's own tools on this machine, as root: ``make pictures``, or
``sudo python3 examples/pictures.py [FOLDER]`` (examples/pictures/ by default).

- ``profile.svg``: ``rbcc tool profile -F 199 -p PID --svg profile.svg 5``, a CPU flame graph of the
  workload of examples/workload.py (two functions spinning 2:1, reads of /dev/zero between them, whose
  kernel frames the graph paints apart from the user frames);
- ``runqlat.png``: ``rbcc tool runqlat --heatmap runqlat.png --heatmap-interval 0.5 16 1``, a heatmap of
  the run queue latency while CPU hogs come and go (none, then twice as many as the CPUs, none, then
  three times as many): each crowd shows as a band of longer waits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import workload

FOLDER = Path(__file__).resolve().parent / "pictures"


def rbcc_tool(*argv: str) -> None:
    """``rbcc tool ARGV...`` to its end, its text output dropped (the picture is what is wanted). It
    runs at a higher priority than the hogs, so that it samples on time however crowded the CPUs."""
    subprocess.run(
        [sys.executable, "-m", "rbcc", "tool", *argv],
        stdout=subprocess.DEVNULL,
        check=True,
        preexec_fn=lambda: os.nice(-10),
    )


def crowds(binary: Path, stop: threading.Event) -> None:
    """Hogs in 4-second phases: none, 2 per CPU, none, 3 per CPU (until ``stop``)."""
    cpus = os.cpu_count() or 1
    for n in (0, 2 * cpus, 0, 3 * cpus):
        if stop.is_set():
            return
        if n == 0:
            stop.wait(4)
            continue
        with workload.hogs(binary, n):
            stop.wait(4)


def main(folder: Path) -> int:
    if os.geteuid() != 0:
        print("pictures: run as root (the tools load BPF programs)", file=sys.stderr)
        return 1
    folder.mkdir(parents=True, exist_ok=True)
    with workload.program() as binary:
        with workload.running(binary) as demo:
            time.sleep(0.5)
            rbcc_tool("profile", "-F", "199", "-p", str(demo.pid), "--svg", str(folder / "profile.svg"), "5")
        stop = threading.Event()
        hogging = threading.Thread(target=crowds, args=(binary, stop))
        hogging.start()
        try:
            heatmap = str(folder / "runqlat.png")
            rbcc_tool("runqlat", "--heatmap", heatmap, "--heatmap-interval", "0.5", "16", "1")
        finally:
            stop.set()
            hogging.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER))
