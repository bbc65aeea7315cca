#!/usr/bin/env python3
"""javastat: activity stats of Java processes (calls, GCs, allocations, ... per second) (ustat -l java).

rbcc's ustat with the language set to java, as bcc's javastat wrapper runs it: see ustat for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import ustat

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(ustat, "javastat", "java")

if __name__ == "__main__":
    sys.exit(main())
