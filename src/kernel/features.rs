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
    // bpf_fentry_test1 exists to be traced (the BPF selftests' own); do_nanosleep is a common fallback.
    *CACHE
        .get_or_init(|| [c"bpf_fentry_test1", c"do_nanosleep"].iter().any(|t| probe_btf_program(BtfProgram::Fentry, t)))
}

/// BPF LSM programs work when one loads and attaches (it also needs "bpf" in the kernel's lsm= list).
pub fn has_lsm() -> bool {
    static CACHE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    // The probe allows everything (returns 0) for the moment it is attached.
    // (libbpf looks LSM hooks up with their "bpf_lsm_" prefix added)
    *CACHE.get_or_init(|| probe_btf_program(BtfProgram::Lsm, c"file_open"))
}

#[derive(Clone, Copy)]
enum BtfProgram {
    Fentry,
    Lsm,
}

/// Load `r0 = 0; exit` as a BTF-attached program on kernel function `target`, then attach it.
fn probe_btf_program(kind: BtfProgram, target: &std::ffi::CStr) -> bool {
    use libbpf_sys as sys;
    let (prog_type, attach_type) = match kind {
        BtfProgram::Fentry => (sys::BPF_PROG_TYPE_TRACING, sys::BPF_TRACE_FENTRY),
        BtfProgram::Lsm => (sys::BPF_PROG_TYPE_LSM, sys::BPF_LSM_MAC),
    };
    // SAFETY: target is a NUL-terminated name; libbpf only reads it.
    let btf_id = unsafe { sys::libbpf_find_vmlinux_btf_id(target.as_ptr(), attach_type) };
    if btf_id <= 0 {
        return false;
    }
    let mut insns = [sys::bpf_insn::default(), sys::bpf_insn::default()];
    insns[0].code = 0xb7; // mov r0, 0
    insns[1].code = 0x95; // exit
    let mut opts = sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<sys::bpf_prog_load_opts>() as _,
        expected_attach_type: attach_type,
        attach_btf_id: btf_id as u32,
        ..Default::default()
    };
    // SAFETY: insns and opts are valid for the call; the license is a NUL-terminated literal.
    let prog =
        unsafe { sys::bpf_prog_load(prog_type, std::ptr::null(), c"GPL".as_ptr(), insns.as_ptr(), 2, &mut opts) };
    if prog < 0 {
        return false;
    }
    // SAFETY: prog is the fd just loaded; a NULL opts asks for the defaults.
    let link = unsafe { sys::bpf_link_create(prog, 0, attach_type, std::ptr::null()) };
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

pub const NO_LSM: &str = "this kernel refuses BPF LSM programs (bcc's LSM_PROBE; they need CONFIG_BPF_LSM and \
     \"bpf\" in the lsm= boot parameter)";
pub const LSM_ALTERNATIVE: &str = "observe the operation with a tracepoint or a kprobe instead (an LSM probe \
     can also deny it; nothing else can)";
