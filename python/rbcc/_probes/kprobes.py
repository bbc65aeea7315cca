"""kprobes on many kernel functions at once (``attach_kprobe(event_re=...)``): one kprobe multi link
where the kernel has them, one kprobe per function where it does not. Either way bcc's bookkeeping sees
one probe per function: ``num_open_kprobes()`` counts functions and ``detach_kprobe(event=f)`` detaches f.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import _core
from ..errors import BPFError

__all__ = ["KprobeGroup", "attach_kprobes"]


class KprobeGroup:
    """One kprobe multi link standing for the kprobes of several functions.

    The kernel fixes a multi link's functions when it makes the link, so detaching one function attaches
    the others through a new link first, then drops the old one: they are never unobserved (for that
    instant they may fire twice), and if the new attach fails the old link stays as it was.
    """

    def __init__(self, attach: Callable[[list[str]], _core.Link], funcs: list[str]) -> None:
        self._attach = attach
        self.funcs = list(funcs)
        self._link: _core.Link | None = attach(self.funcs)

    def remove(self, func: str) -> None:
        rest = [f for f in self.funcs if f != func]
        new = self._attach(rest) if rest else None
        if self._link is not None:
            self._link.detach()
        self._link, self.funcs = new, rest

    def detach(self) -> None:
        """Detach every function (the whole link); again is a no-op."""
        if self._link is not None:
            self._link.detach()
        self._link, self.funcs = None, []

    @property
    def attached(self) -> bool:
        return self._link is not None and self._link.attached


def attach_kprobes(
    obj: _core.Object, fn: str, funcs: list[str], retprobe: bool
) -> list[tuple[str, _core.Link | KprobeGroup]]:
    """Attach function ``fn`` of core object ``obj`` to each of ``funcs``: (function, link) pairs, one
    multi link shared by all where the kernel has them."""
    if len(funcs) > 1 and _core.has_kprobe_multi():
        try:
            group = KprobeGroup(lambda names: obj.attach_kprobe_multi(fn, names, retprobe), funcs)
        except BPFError:
            # The kernel says only that the link failed (a function fprobe cannot trace, a program it
            # refuses to load for multi links): one kprobe each attaches the rest, or names the culprit.
            pass
        else:
            return [(f, group) for f in funcs]
    return [(f, obj.attach_kprobe(fn, f, retprobe)) for f in funcs]
