"""Attaching what the core does not attach by itself: kprobes on many functions (``kprobes``), the
binaries and symbols of uprobes (``uprobes``), bcc's ``USDT`` class (``usdt``), and functions loaded and
attached by hand: XDP, socket filters, ``attach_func`` (``programs``)."""
