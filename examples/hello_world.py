#!/usr/bin/env python3
"""Hello, world: print a line through trace_pipe each time any process calls sync(2)... or execs.

Runs for DURATION seconds (default: until Ctrl-C). Try `sync` in another terminal.
"""

import subprocess
import sys
import time

from rbcc import BPF

prog = r"""
TRACEPOINT_PROBE(sched, sched_process_exec) {
    bpf_trace_printk("Hello, World! exec of pid %d\n", args->pid);
    return 0;
}
"""

duration = float(sys.argv[1]) if len(sys.argv) > 1 else None
b = BPF(text=prog)
print("Tracing exec()... Ctrl-C to end.")
if duration is not None:
    # Make something to see: one exec we start ourselves.
    subprocess.run(["true"], check=True)
deadline = None if duration is None else time.monotonic() + duration
try:
    while deadline is None or time.monotonic() < deadline:
        task, pid, cpu, flags, ts, msg = b.trace_fields(nonblocking=deadline is not None)
        if task is None:
            time.sleep(0.1)
            continue
        print(f"{ts:.6f} {task.decode(errors='replace')} {pid} {msg.decode(errors='replace')}")
except KeyboardInterrupt:
    pass
