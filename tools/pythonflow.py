#!/usr/bin/env python3
"""pythonflow: trace Python method execution flow, indented by call depth (uflow -l python).

rbcc's uflow with the language set to python, as bcc's pythonflow wrapper runs it: see uflow for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import uflow

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(uflow, "pythonflow", "python")

if __name__ == "__main__":
    sys.exit(main())
