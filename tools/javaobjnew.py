#!/usr/bin/env python3
"""javaobjnew: summarize Java object allocations by type (uobjnew -l java).

rbcc's uobjnew with the language set to java, as bcc's javaobjnew wrapper runs it: see uobjnew for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import uobjnew

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(uobjnew, "javaobjnew", "java")

if __name__ == "__main__":
    sys.exit(main())
