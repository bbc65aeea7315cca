#!/usr/bin/env python3
"""perlcalls: summarize Perl method calls, with counts and (-L) latencies (ucalls -l perl).

rbcc's ucalls with the language set to perl, as bcc's perlcalls wrapper runs it: see ucalls for the
options, the output and the probes used.
"""

from __future__ import annotations

import sys

from rbcc._tools.languages import wrap
from rbcc.tools import ucalls

__all__ = ["bpf_text", "build_parser", "main"]

build_parser, bpf_text, main = wrap(ucalls, "perlcalls", "perl")

if __name__ == "__main__":
    sys.exit(main())
