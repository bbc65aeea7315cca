#!/usr/bin/env python3
"""pythonstat: activity stats of Python processes (calls, GCs, allocations, ... per second) (ustat -l python).

rbcc's ustat with the language set to python, as bcc's pythonstat wrapper runs it: see ustat for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import ustat

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(ustat, "pythonstat", "python")

if __name__ == "__main__":
    sys.exit(main())
