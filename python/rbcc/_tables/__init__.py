"""The tables ``BPF["name"]`` returns, over the core's maps: ``factory`` picks a map's class by its type
(hash tables and arrays in ``base``, ``percpu``, ``stacks``, ``events`` for perf and ring buffers, the
special-purpose kinds in ``kinds``); ``batch``, ``text``, ``arrays`` and ``hist`` are what every table
does (batch calls, bcc's text forms, numpy, bcc's histograms), ``types`` makes their ctypes from BTF,
``notebook`` their DataFrames and charts. ``rbcc.table`` names them as bcc does.

The compiled core is imported inside the functions that use it, so these modules load without it.
"""
