//! Attaching a loaded object's programs to probe points. Each attachment is a libbpf link; dropping it
//! removes the probe, and the kernel removes it too when the process dies.
//!
//! Attaching depends on loading (load.rs), never the other way: `Object` loads a function as the
//! program type an attach needs, then the functions here attach it.

use libbpf_rs::{Link, ProgramType};

use crate::error::{Error, Result};
use crate::kernel::features;
use crate::load::{btf_attach_kind, LoadAs, Object};

const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// Run a libbpf attach to `target` ("<kind> <where>", see `Error::Attach`); on failure, the error says
/// what was being attached (`what`) and what libbpf said why.
fn attaching(
    target: &str,
    what: impl FnOnce() -> String,
    f: impl FnOnce() -> std::result::Result<libbpf_rs::Link, libbpf_rs::Error>,
) -> Result<libbpf_rs::Link> {
    let (res, log) = crate::libbpf_log::with_libbpf_log(f);
    res.map_err(|e| {
        let what = what();
        let why = crate::libbpf_log::warnings_and_errors(&log);
        let why = if why.is_empty() { String::new() } else { format!("\n{why}") };
        if matches!(crate::error::libbpf_errno(&e), Some(libc::EPERM)) {
            return Error::Permission(format!("{what}: {e} (needs CAP_BPF and CAP_PERFMON, or root){why}"));
        }
        Error::attach(target, format!("{what}: {e}{why}"))
    })
}

fn kprobe_kind(retprobe: bool) -> &'static str {
    if retprobe {
        "kretprobe"
    } else {
        "kprobe"
    }
}

fn no_kprobes(kind: &str, what: &str) -> Error {
    Error::kernel_feature(
        features::KPROBES,
        features::KPROBE_ALTERNATIVE,
        format!("cannot attach {kind} to {what}: {}; {}", features::NO_KPROBES, features::KPROBE_ALTERNATIVE),
    )
    .at_target(format!("{kind} {what}"))
}

fn kprobe(prog: &libbpf_rs::ProgramMut<'_>, func: &str, retprobe: bool) -> Result<Link> {
    let kind = kprobe_kind(retprobe);
    if !features::has_kprobes() {
        return Err(no_kprobes(kind, func));
    }
    attaching(
        &format!("{kind} {func}"),
        || format!("cannot attach {kind} to {func}"),
        || prog.attach_kprobe(retprobe, func),
    )
}

fn functions(funcs: &[String]) -> String {
    match funcs {
        [one] => one.clone(),
        [first, .., last] => format!("{} functions ({first} ... {last})", funcs.len()),
        [] => "no function".to_string(),
    }
}

/// Whether this kernel can attach `funcs` through one kprobe multi link; if not, the error says what
/// it lacks. Checked before the program is loaded for such a link.
fn check_kprobe_multi(funcs: &[String], retprobe: bool) -> Result<()> {
    let kind = kprobe_kind(retprobe);
    if !features::has_kprobes() {
        return Err(no_kprobes(kind, &functions(funcs)));
    }
    if !features::has_kprobe_multi() {
        return Err(Error::kernel_feature(
            features::KPROBE_MULTI,
            features::KPROBE_MULTI_ALTERNATIVE,
            format!(
                "cannot attach {kind} to {} through one link: {}; {}",
                functions(funcs),
                features::NO_KPROBE_MULTI,
                features::KPROBE_MULTI_ALTERNATIVE
            ),
        )
        .at_target(format!("{kind} {}", functions(funcs))));
    }
    Ok(())
}

/// One kprobe multi link on every function of `funcs`: one fd and one kernel object however many
/// functions, attached in one call. `prog` must have been loaded for it (expected attach type
/// BPF_TRACE_KPROBE_MULTI).
fn kprobe_multi(prog: &libbpf_rs::ProgramMut<'_>, funcs: &[String], retprobe: bool) -> Result<Link> {
    let kind = kprobe_kind(retprobe);
    attaching(
        &format!("{kind} {}", functions(funcs)),
        || format!("cannot attach {kind} to {} through one kprobe multi link", functions(funcs)),
        || prog.attach_kprobe_multi(retprobe, funcs.to_vec()),
    )
}

fn tracepoint(prog: &libbpf_rs::ProgramMut<'_>, category: &str, name: &str) -> Result<Link> {
    let target = format!("tracepoint {category}:{name}");
    crate::kernel::tracefs::tracefs()?;
    if !crate::kernel::tracefs::tracepoint_exists(category, name) {
        let message = format!("{target} does not exist on this kernel (see BPF.get_tracepoints())");
        return Err(Error::attach(target, message));
    }
    attaching(
        &target,
        || format!("cannot attach to tracepoint {category}:{name}"),
        || prog.attach_tracepoint(libbpf_rs::TracepointCategory::Custom(category.to_string()), name),
    )
}

/// fentry/fexit: libbpf attaches to the function the program was loaded for (its section's target).
fn btf_traced(prog: &libbpf_rs::ProgramMut<'_>, section: &str) -> Result<Link> {
    attaching(section, || format!("cannot attach {section}"), || prog.attach())
}

fn raw_tracepoint(prog: &libbpf_rs::ProgramMut<'_>, name: &str) -> Result<Link> {
    let arity = crate::kernel::btf::with_vmlinux(|btf| btf.raw_tracepoint_arity(name)).ok().flatten();
    let target = format!("raw_tracepoint {name}");
    let attached =
        attaching(&target, || format!("cannot attach to raw tracepoint {name}"), || prog.attach_raw_tracepoint(name));
    attached.map_err(|e| match (e, arity) {
        // The kernel refuses, with EINVAL, a program that reads more of ctx->args than the
        // tracepoint passes: scripts written for older kernels read arguments that have gone.
        (Error::Attach { target, message }, Some(n)) if message.contains("-EINVAL") => Error::Attach {
            target,
            message: format!(
                "{message}\nraw tracepoint {name} passes {n} argument(s) on this kernel (ctx->args[0] to \
                 ctx->args[{}]); a program that reads past them is refused",
                n.saturating_sub(1)
            ),
        },
        (Error::Attach { target, message }, None) if message.contains("-ENOENT") => Error::Attach {
            target,
            message: format!("{message}\nthis kernel has no raw tracepoint {name} (see BPF.get_tracepoints())"),
        },
        (e, _) => e,
    })
}

fn uprobe(
    prog: &libbpf_rs::ProgramMut<'_>,
    retprobe: bool,
    pid: i32,
    path: &str,
    offset: usize,
    func_name: Option<&str>,
) -> Result<Link> {
    let kind = if retprobe { "uretprobe" } else { "uprobe" };
    let what = match func_name {
        Some(f) => format!("{path}:{f}"),
        None => format!("{path}:0x{offset:x}"),
    };
    let opts = libbpf_rs::UprobeOpts { retprobe, func_name: func_name.map(str::to_string), ..Default::default() };
    attaching(
        &format!("{kind} {what}"),
        || format!("cannot attach {kind} to {what}"),
        || prog.attach_uprobe_with_opts(pid, path, offset, opts),
    )
}

/// A USDT probe: libbpf finds its sites in `path`, decodes their argument specs for `bpf_usdt_arg`, and
/// counts up the probe's semaphore while attached.
fn usdt(prog: &libbpf_rs::ProgramMut<'_>, pid: i32, path: &str, provider: &str, name: &str) -> Result<Link> {
    attaching(
        &format!("usdt {path}:{provider}:{name}"),
        || format!("cannot attach USDT probe {provider}:{name} in {path}"),
        || prog.attach_usdt(pid, path, provider, name),
    )
}

/// A perf event fd: sampling (period or frequency) for a program to attach to, or counting (both 0)
/// for a BPF_PERF_ARRAY slot that programs read with perf_read.
pub fn open_perf_event(
    ev_type: u32,
    ev_config: u64,
    sample_period: u64,
    sample_freq: u64,
    pid: i32,
    cpu: i32,
    group_fd: i32,
) -> Result<std::os::fd::OwnedFd> {
    // SAFETY: perf_event_attr is plain data; all-zero is its documented default.
    let mut attr: libbpf_sys::perf_event_attr = unsafe { std::mem::zeroed() };
    attr.type_ = ev_type;
    attr.size = std::mem::size_of::<libbpf_sys::perf_event_attr>() as u32;
    attr.config = ev_config;
    if sample_freq > 0 {
        attr.__bindgen_anon_1.sample_freq = sample_freq;
        attr.set_freq(1);
    } else {
        attr.__bindgen_anon_1.sample_period = sample_period;
    }
    // SAFETY: attr is a whole perf_event_attr whose size field says so; it outlives the call.
    unsafe { perf_event_open(std::ptr::from_ref(&attr).cast(), ev_type, ev_config, pid, cpu, group_fd) }
}

/// The bytes the kernel reads of a perf_event_attr whose size field is 0 (PERF_ATTR_SIZE_VER0).
const PERF_ATTR_SIZE_VER0: usize = 64;

/// A perf event opened from a whole `perf_event_attr` laid out by the caller (bcc's
/// `attach_perf_event_raw` with a `Perf.perf_event_attr`): type, config, sampling and flags as given.
/// `attr` must hold as many bytes as its `size` field tells the kernel to read.
pub fn open_perf_event_raw(attr: &[u8], pid: i32, cpu: i32, group_fd: i32) -> Result<std::os::fd::OwnedFd> {
    let Some((ev_type, size, ev_config)) = raw_attr_head(attr) else {
        return Err(Error::InvalidArgument(format!(
            "a perf_event_attr of {} bytes is too short to hold its type, size and config",
            attr.len()
        )));
    };
    let needed = if size == 0 { PERF_ATTR_SIZE_VER0 } else { size };
    if attr.len() < needed {
        return Err(Error::InvalidArgument(format!(
            "perf_event_attr.size is {size}, so the kernel would read {needed} bytes, but the attr has {}",
            attr.len()
        )));
    }
    // the kernel reads it as u64 fields: an 8-byte-aligned copy
    let mut words = vec![0u64; attr.len().div_ceil(8)];
    // SAFETY: words holds at least attr.len() bytes; the two do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(attr.as_ptr(), words.as_mut_ptr().cast::<u8>(), attr.len()) };
    // SAFETY: words holds `needed` bytes of the caller's attr (checked above) and outlives the call.
    unsafe { perf_event_open(words.as_ptr().cast(), ev_type, ev_config, pid, cpu, group_fd) }
}

/// The type, size and config fields that start a perf_event_attr (native byte order), if it is that long.
fn raw_attr_head(attr: &[u8]) -> Option<(u32, usize, u64)> {
    let u32_at = |at: usize| Some(u32::from_ne_bytes(attr.get(at..at + 4)?.try_into().ok()?));
    let config = u64::from_ne_bytes(attr.get(8..16)?.try_into().ok()?);
    Some((u32_at(0)?, u32_at(4)? as usize, config))
}

/// perf_event_open(2), its failures as rbcc's errors (a missing event names what to use instead).
///
/// # Safety
/// `attr` points to a perf_event_attr readable for as many bytes as its size field says.
unsafe fn perf_event_open(
    attr: *const libbpf_sys::perf_event_attr,
    ev_type: u32,
    ev_config: u64,
    pid: i32,
    cpu: i32,
    group_fd: i32,
) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: the caller guarantees attr; the kernel only reads it.
    let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, attr, pid, cpu, group_fd, PERF_FLAG_FD_CLOEXEC) } as i32;
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        let what = format!("perf_event_open(type={ev_type}, config={ev_config}, cpu={cpu})");
        return Err(match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::EOPNOTSUPP) => Error::kernel_feature(
                format!("perf event type={ev_type} config={ev_config}"),
                perf_event_alternative(ev_type),
                format!("{what}: this event is not supported by this kernel or machine ({err})"),
            ),
            Some(libc::EACCES) | Some(libc::EPERM) => Error::Permission(format!("{what}: {err} (needs CAP_PERFMON)")),
            _ => Error::attach(
                format!("perf_event type={ev_type} config={ev_config} cpu={cpu}"),
                format!("{what}: {err}"),
            ),
        });
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// What to use where a perf event is missing: hardware counters are often absent (virtual machines),
/// while the kernel's software clock always exists.
fn perf_event_alternative(ev_type: u32) -> &'static str {
    match ev_type {
        libbpf_sys::PERF_TYPE_HARDWARE | libbpf_sys::PERF_TYPE_HW_CACHE => {
            "a software event, which every kernel has (PerfType.SOFTWARE with PerfSWConfig.CPU_CLOCK samples \
             the CPUs by time)"
        }
        _ => "",
    }
}

/// Attach `prog` to the perf event `fd` opened for it; `cookie` is what `bpf_get_attach_cookie()` returns
/// in the program.
fn perf_event(prog: &libbpf_rs::ProgramMut<'_>, fd: std::os::fd::OwnedFd, target: &str, cookie: u64) -> Result<Link> {
    use std::os::fd::{AsRawFd, IntoRawFd};
    let what = || format!("cannot attach to {target}");
    let opts = libbpf_rs::PerfEventOpts { cookie, ..Default::default() };
    // libbpf's link takes the fd over (and closes it with the link); ours must not close it too.
    let link = attaching(target, what, || prog.attach_perf_event_with_opts(fd.as_raw_fd(), opts))?;
    let _owned_by_the_link = fd.into_raw_fd();
    Ok(link)
}

/// A BPF iterator (`BPF_ITER`): an fd whose reads run the program over the kernel's objects and
/// return what it wrote. The fd keeps the program attached; each new fd is a fresh pass. A
/// `bpf_map_elem` iterator walks the map given.
fn iter_fd(prog: &libbpf_rs::ProgramMut<'_>, map: Option<std::os::fd::BorrowedFd<'_>>) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsFd, AsRawFd, FromRawFd};
    let section = prog.section().to_string_lossy().into_owned();
    let opts = match map {
        Some(fd) => libbpf_rs::IterOpts::Map(libbpf_rs::MapIterOpts::from_fd(fd)),
        None => libbpf_rs::IterOpts::None,
    };
    let link =
        attaching(&section, || format!("cannot attach iterator {section}"), || prog.attach_iter_with_opts(opts))?;
    // SAFETY: bpf_iter_create only reads the link fd, which lives until the end of this function.
    let fd = unsafe { libbpf_sys::bpf_iter_create(link.as_fd().as_raw_fd()) };
    if fd < 0 {
        let err = std::io::Error::from_raw_os_error(-fd);
        return Err(Error::io(format!("cannot open iterator {section}"), err));
    }
    // SAFETY: fd is a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Attaching the object's functions: each is loaded first as the program type its attach needs (see
/// `Object::with_program`).
impl Object {
    pub fn attach_kprobe(&self, prog: &str, func: &str, retprobe: bool) -> Result<Link> {
        self.with_program(prog, LoadAs::of(ProgramType::Kprobe), |p| kprobe(p, func, retprobe))
    }

    /// Attach `prog` to every function of `funcs` through one kprobe multi link (see
    /// `has_kprobe_multi`), the function loaded for that link.
    pub fn attach_kprobe_multi(&self, prog: &str, funcs: &[String], retprobe: bool) -> Result<Link> {
        // The kernel checks at attach that the program was loaded for a multi link.
        let how = LoadAs { attach: Some(libbpf_sys::BPF_TRACE_KPROBE_MULTI), ..LoadAs::of(ProgramType::Kprobe) };
        check_kprobe_multi(funcs, retprobe)?;
        self.with_loaded(prog, how, |p| kprobe_multi(p, funcs, retprobe))
    }

    pub fn attach_tracepoint(&self, prog: &str, category: &str, name: &str) -> Result<Link> {
        self.with_program(prog, LoadAs::of(ProgramType::Tracepoint), |p| tracepoint(p, category, name))
    }

    pub fn attach_raw_tracepoint(&self, prog: &str, name: &str) -> Result<Link> {
        self.with_program(prog, LoadAs::of(ProgramType::RawTracepoint), |p| raw_tracepoint(p, name))
    }

    /// Attach an fentry/fexit (`KFUNC_PROBE`) or LSM (`LSM_PROBE`) program to the kernel function or
    /// hook its section names.
    pub fn attach_btf(&self, prog: &str) -> Result<Link> {
        let section = self.program(prog)?.section().to_string_lossy().into_owned();
        let what = section.replacen('/', " on ", 1);
        let refused = |feature: &str, missing: &str, instead: &str| {
            let message = format!("cannot attach {what}: {missing}; {instead}");
            Err(Error::kernel_feature(feature, instead, message).at_target(&section))
        };
        match btf_attach_kind(&section) {
            None => {
                Err(Error::attach(&section, format!("{prog} is not a KFUNC/KRETFUNC/LSM probe (section {section})")))
            }
            Some(ProgramType::Lsm) if !features::has_lsm() => {
                refused(features::LSM, features::NO_LSM, features::LSM_ALTERNATIVE)
            }
            Some(ProgramType::Tracing) if !features::has_fentry() => {
                refused(features::FENTRY, features::NO_FENTRY, features::FENTRY_ALTERNATIVE)
            }
            Some(ty) => self.with_program(prog, LoadAs::of(ty), |p| btf_traced(p, &section)),
        }
    }

    /// A new read fd of the BPF_ITER function `prog` (over map `map` for a map iterator).
    pub fn iter_fd(&self, prog: &str, map: Option<&str>) -> Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        let map = map.map(|name| self.loaded_map(name)).transpose()?;
        self.with_program(prog, LoadAs::of(ProgramType::Tracing), |p| iter_fd(p, map.as_ref().map(|m| m.as_fd())))
    }

    pub fn attach_uprobe(
        &self,
        prog: &str,
        retprobe: bool,
        pid: i32,
        path: &str,
        offset: usize,
        func_name: Option<&str>,
    ) -> Result<Link> {
        self.with_program(prog, LoadAs::of(ProgramType::Kprobe), |p| uprobe(p, retprobe, pid, path, offset, func_name))
    }

    pub fn attach_usdt(&self, prog: &str, pid: i32, path: &str, provider: &str, name: &str) -> Result<Link> {
        self.with_usdt_program(prog, |p| usdt(p, pid, path, provider, name))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn attach_perf_event(
        &self,
        prog: &str,
        ev_type: u32,
        ev_config: u64,
        sample_period: u64,
        sample_freq: u64,
        pid: i32,
        cpu: i32,
        group_fd: i32,
    ) -> Result<Link> {
        let target = format!("perf_event type={ev_type} config={ev_config}");
        self.with_program(prog, LoadAs::of(ProgramType::PerfEvent), |p| {
            let fd = open_perf_event(ev_type, ev_config, sample_period, sample_freq, pid, cpu, group_fd)
                .map_err(|e| e.at_target(&target))?;
            perf_event(p, fd, &target, 0)
        })
    }

    /// Attach `prog` to a perf event described by a whole `perf_event_attr` (`open_perf_event_raw`).
    pub fn attach_perf_event_raw(
        &self,
        prog: &str,
        attr: &[u8],
        pid: i32,
        cpu: i32,
        group_fd: i32,
        cookie: u64,
    ) -> Result<Link> {
        self.with_program(prog, LoadAs::of(ProgramType::PerfEvent), |p| {
            let fd = open_perf_event_raw(attr, pid, cpu, group_fd)?;
            let (ev_type, _, ev_config) = raw_attr_head(attr).unwrap_or_default();
            let target = format!("perf_event type={ev_type} config={ev_config}");
            perf_event(p, fd, &target, cookie)
        })
    }
}
