#!/usr/bin/env python3
"""pythongc: summarize Python garbage collections, with their durations (ugc -l python).

rbcc's ugc with the language set to python, as bcc's pythongc wrapper runs it: see ugc for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import ugc

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(ugc, "pythongc", "python")

if __name__ == "__main__":
    sys.exit(main())
