#!/usr/bin/env python3
"""nodestat: activity stats of Node.js processes (calls, GCs, allocations, ... per second) (ustat -l node).

rbcc's ustat with the language set to node, as bcc's nodestat wrapper runs it: see ustat for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import ustat

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(ustat, "nodestat", "node")

if __name__ == "__main__":
    sys.exit(main())
