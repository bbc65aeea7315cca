"""Probe specifications of bcc's multi-tools (trace, argdist, funccount, stackcount): one parser for
their grammars, typed descriptions of what they ask for, the BPF C that does it, and the sessions that
run it.

- trace: ``[{p,r,t,u}]:[library]:function[+offset][(signature)] [(predicate)] ["format"[, args...]]``
- argdist: ``{p,r,t,u}:{[library],category}:function(signature)[:type[,type...]:expr[,expr...][:filter]][#label]``
- funccount / stackcount: ``[p:|t:|u:][library:]pattern`` with ``*`` wildcards (or a regex)

A malformed spec raises :class:`~rbcc.errors.ProbeSpecError` naming the problem, with the spec quoted
and a caret under the offending position. The C generators live in :mod:`rbcc._specs.gen`, and
:mod:`rbcc._specs.sessions` runs them (``rbcc.trace``, ``rbcc.argdist``, the trace and argdist tools).

Specs are untrusted input that becomes C: every predicate, argument, expression, filter and signature is
checked by :mod:`rbcc._specs.tokens` to be one C expression (or one parameter list) that cannot leave its place
in the program, and a format's widths and precisions are bounded (:data:`rbcc._specs.trace.MAX_FORMAT_WIDTH`).

The grammars share ``points`` (where a probe goes, an expression of a spec); ``trace``, ``argdist`` and
``pattern`` parse one each.
"""
