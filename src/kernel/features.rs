//! What this kernel can attach, decided by probing the kernel, never by its version number.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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

/// The features an error names (`Error::KernelFeature`'s `feature`), as users know them.
pub const KPROBES: &str = "kprobes";
pub const KPROBE_MULTI: &str = "kprobe multi links";
pub const FENTRY: &str = "fentry/fexit";
pub const LSM: &str = "BPF LSM";

pub const NO_KPROBES: &str = "this kernel has no kprobes (CONFIG_KPROBES is not set: no kprobe PMU, no kprobe_events)";
pub const KPROBE_ALTERNATIVE: &str =
    "use a tracepoint instead (TRACEPOINT_PROBE(category, event) or attach_tracepoint; see BPF.get_tracepoints()), \
     or a raw tracepoint (RAW_TRACEPOINT_PROBE)";

pub const NO_KPROBE_MULTI: &str =
    "this kernel has no kprobe multi links (they need Linux 5.18 or later built with CONFIG_FPROBE)";
pub const KPROBE_MULTI_ALTERNATIVE: &str = "attach one kprobe per function instead";

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
    let Some(prog) = load_trivial(prog_type, attach_type, btf_id as u32) else {
        return false;
    };
    // SAFETY: prog is a loaded program's fd; a NULL opts asks for the defaults.
    let link = unsafe { sys::bpf_link_create(prog.as_raw_fd(), 0, attach_type, std::ptr::null()) };
    if link >= 0 {
        // SAFETY: the link fd was opened here and is not used again.
        unsafe { libc::close(link) };
    }
    link >= 0
}

/// Load `r0 = 0; exit` as `prog_type`, expecting `attach_type` (on `attach_btf_id` when not 0).
fn load_trivial(prog_type: u32, attach_type: u32, attach_btf_id: u32) -> Option<OwnedFd> {
    use libbpf_sys as sys;
    let mut insns = [sys::bpf_insn::default(), sys::bpf_insn::default()];
    insns[0].code = 0xb7; // mov r0, 0
    insns[1].code = 0x95; // exit
    let mut opts = sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<sys::bpf_prog_load_opts>() as _,
        expected_attach_type: attach_type,
        attach_btf_id,
        ..Default::default()
    };
    // SAFETY: insns and opts are valid for the call; the license is a NUL-terminated literal.
    let fd = unsafe { sys::bpf_prog_load(prog_type, std::ptr::null(), c"GPL".as_ptr(), insns.as_ptr(), 2, &mut opts) };
    // SAFETY: a non-negative fd is a new descriptor that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// kprobe multi links (one link attaching a program to many kernel functions, through fprobe) exist
/// when the kernel gets as far as reading a link's address list: given one it cannot read, such a
/// kernel answers EFAULT; one without them answers EINVAL (an unknown attach type) or EOPNOTSUPP
/// (built without CONFIG_FPROBE). Nothing is attached.
pub fn has_kprobe_multi() -> bool {
    use libbpf_sys as sys;
    static CACHE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CACHE.get_or_init(|| {
        let Some(prog) = load_trivial(sys::BPF_PROG_TYPE_KPROBE, sys::BPF_TRACE_KPROBE_MULTI, 0) else {
            return false;
        };
        let mut opts = sys::bpf_link_create_opts {
            sz: std::mem::size_of::<sys::bpf_link_create_opts>() as _,
            ..Default::default()
        };
        opts.__bindgen_anon_1.kprobe_multi = sys::bpf_link_create_opts__bindgen_ty_1__bindgen_ty_2 {
            cnt: 1,
            // an address in the never-mapped first page: the kernel's copy of the list faults
            addrs: std::ptr::without_provenance(8),
            ..Default::default()
        };
        // SAFETY: prog is a loaded program's fd and opts is valid for the call; libbpf passes the
        // address list to the kernel without reading it, and the kernel's copy checks the address.
        let link = unsafe { sys::bpf_link_create(prog.as_raw_fd(), 0, sys::BPF_TRACE_KPROBE_MULTI, &opts) };
        if link >= 0 {
            // SAFETY: the link fd was opened here and is not used again (a kernel that read the
            // address list anyway and attached: multi links work).
            unsafe { libc::close(link) };
            return true;
        }
        // libbpf returns -errno
        link == -libc::EFAULT
    })
}

pub const NO_FENTRY: &str = "this kernel refuses fentry/fexit programs (bcc's KFUNC_PROBE/KRETFUNC_PROBE)";
pub const FENTRY_ALTERNATIVE: &str = "use a kprobe/kretprobe where the kernel has kprobes, or a tracepoint \
     (TRACEPOINT_PROBE, attach_tracepoint) or raw tracepoint";

pub const NO_LSM: &str = "this kernel refuses BPF LSM programs (bcc's LSM_PROBE; they need CONFIG_BPF_LSM and \
     \"bpf\" in the lsm= boot parameter)";
pub const LSM_ALTERNATIVE: &str = "observe the operation with a tracepoint or a kprobe instead (an LSM probe \
     can also deny it; nothing else can)";
