#!/usr/bin/env python3
"""rubycalls: summarize Ruby method calls, with counts and (-L) latencies (ucalls -l ruby).

rbcc's ucalls with the language set to ruby, as bcc's rubycalls wrapper runs it: see ucalls for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import ucalls

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(ucalls, "rubycalls", "ruby")

if __name__ == "__main__":
    sys.exit(main())
