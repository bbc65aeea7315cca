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

/// fentry/fexit (bcc's kfuncs) work when a trivial fentry program both loads and attaches: some
/// kernels have the program type but refuse it (this project's CI kernel answers EPERM).
pub fn has_fentry() -> bool {
    static CACHE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CACHE.get_or_init(|| FENTRY_TARGETS.iter().any(|t| probe_fentry(t)))
}

/// Kernel functions that exist to be traced (bpf_fentry_test1 is the BPF selftests' own), then a common one.
const FENTRY_TARGETS: [&std::ffi::CStr; 2] = [c"bpf_fentry_test1", c"do_nanosleep"];

fn probe_fentry(target: &std::ffi::CStr) -> bool {
    use libbpf_sys as sys;
    // SAFETY: target is a NUL-terminated name; libbpf only reads it.
    let btf_id = unsafe { sys::libbpf_find_vmlinux_btf_id(target.as_ptr(), sys::BPF_TRACE_FENTRY) };
    if btf_id <= 0 {
        return false;
    }
    // r0 = 0; exit
    let mut insns = [sys::bpf_insn::default(), sys::bpf_insn::default()];
    insns[0].code = 0xb7;
    insns[1].code = 0x95;
    let opts = sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<sys::bpf_prog_load_opts>() as _,
        expected_attach_type: sys::BPF_TRACE_FENTRY,
        attach_btf_id: btf_id as u32,
        ..Default::default()
    };
    let mut opts = opts;
    // SAFETY: insns and opts are valid for the call; the license is a NUL-terminated literal.
    let prog = unsafe {
        sys::bpf_prog_load(sys::BPF_PROG_TYPE_TRACING, std::ptr::null(), c"GPL".as_ptr(), insns.as_ptr(), 2, &mut opts)
    };
    if prog < 0 {
        return false;
    }
    // SAFETY: prog is the fd just loaded; a NULL opts asks for the defaults.
    let link = unsafe { sys::bpf_link_create(prog, 0, sys::BPF_TRACE_FENTRY, std::ptr::null()) };
    // SAFETY: both fds (when valid) were opened here and are not used again.
    unsafe {
        if link >= 0 {
            libc::close(link);
        }
        libc::close(prog);
    }
    link >= 0
}

pub const NO_FENTRY: &str = "this kernel refuses fentry/fexit programs (bcc's KFUNC_PROBE/KRETFUNC_PROBE)";
pub const FENTRY_ALTERNATIVE: &str = "use a kprobe/kretprobe where the kernel has kprobes, or a tracepoint \
     (TRACEPOINT_PROBE, attach_tracepoint) or raw tracepoint";
