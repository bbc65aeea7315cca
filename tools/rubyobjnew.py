#!/usr/bin/env python3
"""rubyobjnew: summarize Ruby object allocations by type (uobjnew -l ruby).

rbcc's uobjnew with the language set to ruby, as bcc's rubyobjnew wrapper runs it: see uobjnew for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import uobjnew

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(uobjnew, "rubyobjnew", "ruby")

if __name__ == "__main__":
    sys.exit(main())
