"""What the running kernel offers, asked as bcc scripts ask it (``facts``: ``BPF.ksym``,
``tracepoint_exists``, ``support_kfunc``, ...), and its trace pipe (``tracepipe``)."""
