#!/usr/bin/env python3
"""perlflow: trace Perl method execution flow, indented by call depth (uflow -l perl).

rbcc's uflow with the language set to perl, as bcc's perlflow wrapper runs it: see uflow for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import uflow

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(uflow, "perlflow", "perl")

if __name__ == "__main__":
    sys.exit(main())
