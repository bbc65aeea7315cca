"""What rbcc's tools (the scripts in the checkout's ``tools/``, ``rbcc.tools``) share: ``common`` (bcc's
options, ``--ebpf``, the run loop, one-line errors), and the pieces of a family of tools (``block``,
``sched``, ``sched_stacks``, ``tcp``, ``proc``, ``counting``)."""
