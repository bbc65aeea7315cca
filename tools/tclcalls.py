#!/usr/bin/env python3
"""tclcalls: summarize Tcl method calls, with counts and (-L) latencies (ucalls -l tcl).

rbcc's ucalls with the language set to tcl, as bcc's tclcalls wrapper runs it: see ucalls for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import ucalls

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(ucalls, "tclcalls", "tcl")

if __name__ == "__main__":
    sys.exit(main())
