//! What this kernel can attach, decided by probing the kernel, never by its version number.

use std::path::Path;

/// kprobes exist when the kernel registers the kprobe PMU or offers tracefs kprobe_events.
pub fn has_kprobes() -> bool {
    if Path::new("/sys/bus/event_source/devices/kprobe/type").exists() {
        return true;
    }
    super::tracefs::tracefs().map(|t| t.join("kprobe_events").exists()).unwrap_or(false)
}

/// uprobes, likewise, through the uprobe PMU or tracefs uprobe_events.
pub fn has_uprobes() -> bool {
    if Path::new("/sys/bus/event_source/devices/uprobe/type").exists() {
        return true;
    }
    super::tracefs::tracefs().map(|t| t.join("uprobe_events").exists()).unwrap_or(false)
}

pub const NO_KPROBES: &str = "this kernel has no kprobes (CONFIG_KPROBES is not set: no kprobe PMU, no kprobe_events)";
pub const KPROBE_ALTERNATIVE: &str =
    "use a tracepoint instead (TRACEPOINT_PROBE(category, event) or attach_tracepoint; see BPF.get_tracepoints()), \
     or a raw tracepoint (RAW_TRACEPOINT_PROBE)";
