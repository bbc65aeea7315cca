#!/usr/bin/env python3
"""javaflow: trace Java method execution flow, indented by call depth (uflow -l java).

rbcc's uflow with the language set to java, as bcc's javaflow wrapper runs it: see uflow for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import uflow

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(uflow, "javaflow", "java")

if __name__ == "__main__":
    sys.exit(main())
