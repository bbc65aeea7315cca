"""Pictures of what BPF programs count: flame graphs of stacks (drawn by the core with inferno), latency
heatmaps (time against log2 buckets, drawn with matplotlib), the sampling of a histogram table into a
heatmap, a live view for notebooks, and the ``%%bpf`` cell magic of ``%load_ext rbcc``.

``rbcc.notebook`` and ``rbcc.flamegraph`` name what users call; the tools' ``--svg`` and ``--heatmap``
come through ``rbcc._tools``."""
