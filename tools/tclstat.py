#!/usr/bin/env python3
"""tclstat: activity stats of Tcl processes (calls, GCs, allocations, ... per second) (ustat -l tcl).

rbcc's ustat with the language set to tcl, as bcc's tclstat wrapper runs it: see ustat for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import ustat

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(ustat, "tclstat", "tcl")

if __name__ == "__main__":
    sys.exit(main())
