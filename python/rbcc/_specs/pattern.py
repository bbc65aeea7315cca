"""funccount's and stackcount's patterns: ``[p:|t:|u:][library:]pattern`` with ``*`` wildcards (or a
regex), parsed into a ``PatternSpec``."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

from .points import colon_parts
from .tokens import WS
from .tokens import fail as _fail

__all__ = ["PatternSpec", "parse_pattern"]


@dataclass(frozen=True)
class PatternSpec:
    """A funccount/stackcount pattern: ``kind`` p (functions), t (tracepoints) or u (USDT probes);
    ``pattern`` as written and ``regex`` what names must match (a tracepoint's name is category:event)."""

    text: str
    kind: str
    library: str
    pattern: str
    regex: str

    @property
    def is_kernel(self) -> bool:
        return self.kind == "t" or (self.kind == "p" and not self.library)

    def matches(self, name: str) -> bool:
        return re.match(self.regex, name) is not None


def parse_pattern(spec: str, use_regex: bool = False) -> PatternSpec:
    """A funccount/stackcount pattern; ``use_regex`` (-r) takes the name part as a regular expression,
    else ``*`` is the only wildcard."""
    parts = colon_parts(spec, 0, len(spec))
    if len(parts) > 3:
        _fail(spec, parts[3][1] - 1, "too many ':'-separated parts: [p:|t:|u:][library:]pattern")
    if len(parts) == 1:
        parts = [("p", 0), ("", 0), parts[0]]
    elif len(parts) == 2:
        parts = [("p", 0), *parts]
    (kind, kind_at), (library, library_at), (pattern, pattern_at) = parts
    if kind not in ("p", "t", "u"):
        _fail(spec, kind_at, f"unknown probe type '{kind}': must be p, t or u")
    if kind == "t":
        if not library:
            _fail(spec, library_at, "a tracepoint pattern is t:category:event (wildcards allowed)")
        library_pattern, library = library, ""
        name, name_at = f"{library_pattern}:{pattern}", library_at
    else:
        name, name_at = pattern, pattern_at
        if kind == "u" and not library:
            _fail(spec, library_at, "a USDT pattern needs the library or program: u:library:probe")
    if not pattern:
        _fail(spec, pattern_at, "missing pattern")
    if any(c in WS for c in name):
        _fail(spec, name_at + next(i for i, c in enumerate(name) if c in WS), "blank in the pattern")
    if use_regex:
        regex = name
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "possible nested set" and the like are no errors
                re.compile(regex)
        except (re.error, RecursionError, OverflowError) as e:
            if not isinstance(e, re.error):
                _fail(spec, name_at, "regular expression too complex")
            _fail(spec, name_at + (e.pos or 0), f"invalid regular expression: {e.msg}")
    else:
        regex = "^" + ".*".join(re.escape(piece) for piece in name.split("*")) + "$"
    return PatternSpec(spec, kind, library, name, regex)
