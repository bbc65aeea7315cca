#!/usr/bin/env python3
"""phpcalls: summarize PHP method calls, with counts and (-L) latencies (ucalls -l php).

rbcc's ucalls with the language set to php, as bcc's phpcalls wrapper runs it: see ucalls for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import ucalls

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(ucalls, "phpcalls", "php")

if __name__ == "__main__":
    sys.exit(main())
