#!/usr/bin/env python3
"""javacalls: summarize Java method calls, with counts and (-L) latencies (ucalls -l java).

rbcc's ucalls with the language set to java, as bcc's javacalls wrapper runs it: see ucalls for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import ucalls

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(ucalls, "javacalls", "java")

if __name__ == "__main__":
    sys.exit(main())
