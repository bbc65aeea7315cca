#!/usr/bin/env python3
"""javathreads: trace Java thread creation (uthreads -l java).

rbcc's uthreads with the language set to java, as bcc's javathreads wrapper runs it: see uthreads for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import uthreads

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(uthreads, "javathreads", "java")

if __name__ == "__main__":
    sys.exit(main())
