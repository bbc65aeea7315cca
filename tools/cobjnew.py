#!/usr/bin/env python3
"""cobjnew: summarize C malloc() allocations by block size (uobjnew -l c).

rbcc's uobjnew with the language set to c, as bcc's cobjnew wrapper runs it: see uobjnew for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import uobjnew

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(uobjnew, "cobjnew", "c")

if __name__ == "__main__":
    sys.exit(main())
