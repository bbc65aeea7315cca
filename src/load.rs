//! Loading: a compiled object into the kernel with libbpf-rs, its verifier log kept for errors.
//! The loaded object is the `Object` Python holds; attach.rs attaches its programs.

use crate::btf::{Btf, TypeDesc};
use crate::error::{Error, Result};
use crate::kernel::features;
use crate::libbpf_log::{failing_insn, load_logs, verifier_log, warnings_and_errors, with_libbpf_log};
use crate::maps::Map;
use crate::shared_maps::{Exports, Sharing};
use libbpf_rs::{AsRawLibbpf, MapCore, ProgramType};

/// libbpf's maps of USDT argument specs (usdt.bpf.h), private to the object that attaches USDT probes.
const USDT_PRIVATE_MAPS: [&str; 2] = ["__bpf_usdt_specs", "__bpf_usdt_ip_to_spec_id"];

fn load_error(e: libbpf_rs::Error, log: &str) -> Error {
    if let Some((prog, vlog)) = verifier_log(log) {
        let message = format!("the BPF verifier rejected the program: {e}\n{prog}\n{vlog}");
        Error::Verifier { message, insn: failing_insn(&vlog), log: vlog }
    } else {
        let mut detail = warnings_and_errors(log);
        if detail.is_empty() {
            // No line says "failed": libbpf's last words are the nearest to why.
            let said: Vec<&str> =
                log.lines().filter(|l| l.starts_with("libbpf:") && !l.contains("skipping optional step")).collect();
            detail = said[said.len().saturating_sub(3)..].join("\n");
        }
        let sep = if detail.is_empty() { "" } else { ":\n" };
        Error::libbpf(format!("loading the BPF object failed{sep}{detail}"), e)
    }
}

/// Functions bcc attaches by their names (`kprobe__x`, `tracepoint__c__e`, ...): loaded, and so
/// verified, with the object. Every other function waits for its first attach, as in bcc.
pub fn is_auto_attached(name: &str) -> bool {
    ["kprobe__", "kretprobe__", "tracepoint__", "raw_tracepoint__", "kfunc__", "kretfunc__", "kmod_ret__", "lsm__"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// The program type of a program attached through the kernel's BTF (fentry/fexit, LSM), if it is one.
pub(crate) fn btf_attach_kind(section: &str) -> Option<ProgramType> {
    if ["fentry/", "fexit/", "fmod_ret/"].iter().any(|p| section.starts_with(p)) {
        Some(ProgramType::Tracing)
    } else if section.starts_with("lsm/") {
        Some(ProgramType::Lsm)
    } else {
        None
    }
}

/// Whether the kernel takes this program now; a refused kind waits for its attach, which names it.
fn kernel_takes(section: &str) -> bool {
    match btf_attach_kind(section) {
        Some(ProgramType::Tracing) => features::has_fentry(),
        Some(ProgramType::Lsm) => features::has_lsm(),
        _ => true,
    }
}

/// How a function is loaded: the kernel fixes these at load and checks them at attach.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LoadAs {
    pub ty: ProgramType,
    /// The expected attach type (`enum bpf_attach_type`), for the program types whose attach checks it
    /// (cgroup sock_addr, multi-uprobe links, ...).
    pub attach: Option<u32>,
    /// The network device the program is bound to (offloaded), 0 for none.
    pub ifindex: u32,
}

impl LoadAs {
    pub fn of(ty: ProgramType) -> Self {
        LoadAs { ty, attach: None, ifindex: 0 }
    }
}

/// `LoadAs` from bcc's numbers, checked: a program type the kernel's enum has, a device that exists.
fn load_as(prog: &str, prog_type: u32, attach_type: Option<u32>, device: Option<&str>) -> Result<LoadAs> {
    let ty = ProgramType::from(prog_type);
    if matches!(ty, ProgramType::Unspec | ProgramType::Unknown) {
        let why = format!("{prog_type} is not a BPF program type (see BPFProgType)");
        return Err(Error::io(
            format!("cannot load {prog}"),
            std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
        ));
    }
    let ifindex = match device {
        Some(dev) => crate::netattach::ifindex(dev)?,
        None => 0,
    };
    Ok(LoadAs { ty, attach: attach_type, ifindex })
}

/// Where one source line's instructions start in a function (`Object::func_lines`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLine {
    /// The index of the line's first instruction.
    pub insn: u32,
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The line as clang saw it (the C rbcc compiled, at the user's own line numbers).
    pub text: String,
}

/// A loaded BPF object: its programs and maps live in the kernel while this (or a link) lives.
pub struct Object {
    obj: libbpf_rs::Object,
    /// The ELF, kept to load a function again as another program type (see `with_program`).
    elf: Vec<u8>,
    /// Functions loaded on their own (function, how, object holding it), sharing the object's maps. The
    /// object holds the ELF's other functions too, unloaded.
    /// Behind a lock: any thread may attach (a script's poller thread, a notebook's cells).
    extra: std::sync::Mutex<Vec<(String, LoadAs, libbpf_rs::Object)>>,
    /// This object's maps that later objects may use as "extern", withdrawn when it goes.
    _exports: Exports,
    /// The verifier's log level for every load (bcc's DEBUG_BPF: 1, DEBUG_BPF_REGISTER_STATE: 2), 0 for none.
    log_level: u32,
    /// With a log level: the verifier's logs of the loads since `take_load_logs` was last called.
    load_logs: std::sync::Mutex<Vec<(String, String)>>,
}

/// libbpf's object builder, with the kernel BTF file of `RBCC_KERNEL_BTF` for CO-RE relocations
/// where the kernel has none of its own.
fn object_builder() -> std::result::Result<libbpf_rs::ObjectBuilder, libbpf_rs::Error> {
    let mut builder = libbpf_rs::ObjectBuilder::default();
    if let Some(path) = crate::kernel::btf::custom_btf() {
        builder.btf_custom_path(path)?;
    }
    Ok(builder)
}

impl Object {
    /// Load `elf`; with `log_level` above 0, the verifier logs every program it loads (`take_load_logs`).
    pub fn load(elf: &[u8], name: &str, log_level: u32) -> Result<Object> {
        let sharing = Sharing::read(elf)?;
        let (res, log) = with_libbpf_log(|| -> Result<std::result::Result<libbpf_rs::Object, libbpf_rs::Error>> {
            let mut builder = match object_builder() {
                Ok(b) => b,
                Err(e) => return Ok(Err(e)),
            };
            let open = builder.name(name).and_then(|b| b.open_memory(elf));
            let mut open = match open {
                Ok(open) => open,
                Err(e) => return Ok(Err(e)),
            };
            sharing.prepare(&mut open)?;
            for mut prog in open.progs_mut() {
                // A kernel that refuses fentry or LSM would fail the whole load: such programs wait for
                // their attach, which names the missing feature.
                let takes = kernel_takes(&prog.section().to_string_lossy());
                prog.set_autoload(is_auto_attached(&prog.name().to_string_lossy()) && takes);
                if log_level > 0 {
                    prog.set_log_level(log_level);
                }
            }
            Ok(open.load())
        });
        let obj = res?.map_err(|e| match sharing.explain_failure(&log) {
            Some(why) => Error::Load(why),
            None => load_error(e, &log),
        })?;
        let exports = sharing.publish(&obj)?;
        Ok(Object {
            obj,
            elf: elf.to_vec(),
            extra: Default::default(),
            _exports: exports,
            log_level,
            load_logs: std::sync::Mutex::new(if log_level > 0 { load_logs(&log) } else { Vec::new() }),
        })
    }

    /// The verifier's logs, as (function, log), of what was loaded since the last call (only with a log
    /// level: see `load`).
    pub fn take_load_logs(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.load_logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Run `f` on function `name` loaded as program type `ty`.
    ///
    /// bcc loads a function when an attach first needs it, as whatever type that attach needs
    /// (`int hello(void *ctx)` can be a kprobe or a tracepoint), so a function a script never attaches
    /// is never verified. libbpf fixes the type per load: each (function, type) is loaded from the same
    /// ELF, alone, with every map shared with the object's load.
    pub fn with_program<T>(
        &self,
        name: &str,
        how: LoadAs,
        f: impl FnOnce(&libbpf_rs::ProgramMut<'_>) -> Result<T>,
    ) -> Result<T> {
        let prog = self.program(name)?;
        // autoload: the object's load loaded it (a refused fentry/LSM function stays unloaded there)
        if prog.autoload() && how == LoadAs::of(prog.prog_type()) {
            return f(&prog);
        }
        self.with_loaded(name, how, f)
    }

    /// Run `f` on function `name` loaded on its own as `how` says.
    pub(crate) fn with_loaded<T>(
        &self,
        name: &str,
        how: LoadAs,
        f: impl FnOnce(&libbpf_rs::ProgramMut<'_>) -> Result<T>,
    ) -> Result<T> {
        // held through `f`: one thread loads a function, the others then find it loaded
        let mut extra = self.extra.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let index = match extra.iter().position(|(n, h, _)| n == name && *h == how) {
            Some(i) => i,
            None => {
                let obj = self.load_again(name, how)?;
                extra.push((name.to_string(), how, obj));
                extra.len() - 1
            }
        };
        let prog = extra[index]
            .2
            .progs_mut()
            .find(|p| p.name() == name)
            .ok_or_else(|| Error::Lookup(format!("no BPF function named '{name}' in this program")))?;
        f(&prog)
    }

    fn load_again(&self, name: &str, how: LoadAs) -> Result<libbpf_rs::Object> {
        let (res, log) = with_libbpf_log(|| -> std::result::Result<libbpf_rs::Object, libbpf_rs::Error> {
            let mut open = object_builder()?.open_memory(&self.elf)?;
            for mut map in open.maps_mut() {
                // libbpf numbers each object's USDT argument specs from 0 in these maps: shared, the
                // USDT functions loaded in objects of their own would read one another's specs.
                if USDT_PRIVATE_MAPS.iter().any(|n| map.name() == *n) {
                    continue;
                }
                if let Some(loaded) = self.obj.maps().find(|m| m.name() == map.name()) {
                    use std::os::fd::AsFd;
                    map.reuse_fd(loaded.as_fd())?;
                }
            }
            for mut prog in open.progs_mut() {
                let wanted = prog.name() == name;
                prog.set_autoload(wanted);
                if !wanted {
                    continue;
                }
                // Re-typing drops what libbpf knows from the section name: only when it must.
                if prog.prog_type() != how.ty {
                    prog.set_prog_type(how.ty);
                }
                if let Some(attach) = how.attach {
                    // SAFETY: the program belongs to `open`, alive here; libbpf only stores the number.
                    let rc = unsafe {
                        libbpf_sys::bpf_program__set_expected_attach_type(prog.as_libbpf_object().as_ptr(), attach)
                    };
                    debug_assert_eq!(rc, 0, "the object is not loaded yet");
                }
                if how.ifindex != 0 {
                    prog.set_ifindex(how.ifindex);
                }
                if self.log_level > 0 {
                    prog.set_log_level(self.log_level);
                }
            }
            open.load()
        });
        if self.log_level > 0 && res.is_ok() {
            let mut logs = self.load_logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            logs.extend(load_logs(&log));
        }
        res.map_err(|e| load_error(e, &log))
    }

    /// Run `f` on function `name` loaded for libbpf's USDT attach, which uses one multi-uprobe link
    /// where the kernel has them (the program must be loaded for that) and single uprobes elsewhere.
    pub(crate) fn with_usdt_program<T>(
        &self,
        name: &str,
        f: impl FnOnce(&libbpf_rs::ProgramMut<'_>) -> Result<T>,
    ) -> Result<T> {
        let multi = LoadAs { attach: Some(libbpf_sys::BPF_TRACE_UPROBE_MULTI), ..LoadAs::of(ProgramType::Kprobe) };
        // A kernel without multi-uprobe links refuses the load; libbpf then attaches single uprobes.
        let how =
            if self.with_loaded(name, multi, |_| Ok(())).is_ok() { multi } else { LoadAs::of(ProgramType::Kprobe) };
        self.with_loaded(name, how, f)
    }

    pub fn program(&self, name: &str) -> Result<libbpf_rs::ProgramMut<'_>> {
        self.obj
            .progs_mut()
            .find(|p| p.name() == name)
            .ok_or_else(|| Error::Lookup(format!("no BPF function named '{name}' in this program")))
    }

    pub(crate) fn loaded_map(&self, name: &str) -> Result<libbpf_rs::Map<'_>> {
        self.obj
            .maps()
            .find(|m| m.name() == name)
            .ok_or_else(|| Error::Lookup(format!("no map named '{name}' in this program")))
    }

    fn btf(&self) -> Option<Btf> {
        // SAFETY: the object owns its BTF for as long as self lives; the Btf view does not outlive self.
        unsafe { Btf::from_raw(libbpf_sys::bpf_object__btf(self.obj.as_libbpf_object().as_ptr())) }
    }
}

impl Object {
    /// (function name, ELF section) of every program.
    pub fn programs(&self) -> Vec<(String, String)> {
        self.obj
            .progs()
            .map(|p| (p.name().to_string_lossy().into_owned(), p.section().to_string_lossy().into_owned()))
            .collect()
    }

    /// The user's maps (libbpf's internal .rodata/.bss/.data maps left out).
    pub fn map_names(&self) -> Vec<String> {
        self.obj.maps().map(|m| m.name().to_string_lossy().into_owned()).filter(|n| !n.contains('.')).collect()
    }

    pub fn map(&self, name: &str) -> Result<Map> {
        let m = self.loaded_map(name)?;
        let btf = self.btf();
        Map::from_loaded(&m, btf.as_ref())
    }

    /// The type of the records the program sends through perf/ring buffer `map_name`.
    pub fn event_type(&self, map_name: &str) -> Option<TypeDesc> {
        let btf = self.btf()?;
        let func = btf.find_func(&format!("__rbcc_event__{map_name}"))?;
        btf.first_param_pointee(func).map(|id| btf.describe(id))
    }

    /// The fd of function `prog`, loaded (as the type its section names) if it was not yet.
    pub fn prog_fd(&self, prog: &str) -> Result<i32> {
        use std::os::fd::{AsFd, AsRawFd};
        let ty = self.program(prog)?.prog_type();
        self.with_program(prog, LoadAs::of(ty), |p| Ok(p.as_fd().as_raw_fd()))
    }

    /// Load function `prog` as program type `prog_type` (bcc's `load_func`), with `attach_type` as its
    /// expected attach type and bound to network device `device` when given; returns the program's fd.
    /// A function loaded one way is loaded once, and the attach methods use that same program.
    pub fn load_func(&self, prog: &str, prog_type: u32, attach_type: Option<u32>, device: Option<&str>) -> Result<i32> {
        use std::os::fd::{AsFd, AsRawFd};
        let how = load_as(prog, prog_type, attach_type, device)?;
        self.with_program(prog, how, |p| Ok(p.as_fd().as_raw_fd()))
    }

    /// How `func_insns` and `func_lines` load a function: as `load_func` did with these arguments, or as
    /// the type its section names.
    fn how_loaded(
        &self,
        prog: &str,
        prog_type: Option<u32>,
        attach_type: Option<u32>,
        device: Option<&str>,
    ) -> Result<LoadAs> {
        match prog_type {
            Some(ty) => load_as(prog, ty, attach_type, device),
            None => Ok(LoadAs::of(self.program(prog)?.prog_type())),
        }
    }

    /// The source lines of function `prog`'s instructions (those of `func_insns`, same arguments), from
    /// the line info clang wrote into the object's BTF: where each line's instructions start.
    pub fn func_lines(
        &self,
        prog: &str,
        prog_type: Option<u32>,
        attach_type: Option<u32>,
        device: Option<&str>,
    ) -> Result<Vec<SourceLine>> {
        let how = self.how_loaded(prog, prog_type, attach_type, device)?;
        // every object loaded from this ELF has its BTF, so the line info's string offsets are the same
        let Some(btf) = self.btf() else { return Ok(Vec::new()) };
        self.with_program(prog, how, |p| {
            let raw = p.as_libbpf_object().as_ptr();
            // SAFETY: raw is a live program of an object held by self; libbpf returns its line info
            // records (NULL or `count` of them), which live as long as the program.
            let records = unsafe {
                let (start, count) =
                    (libbpf_sys::bpf_program__line_info(raw), libbpf_sys::bpf_program__line_info_cnt(raw));
                if start.is_null() {
                    &[][..]
                } else {
                    std::slice::from_raw_parts(start, count as usize)
                }
            };
            Ok(records
                .iter()
                .map(|r| SourceLine {
                    insn: r.insn_off,
                    file: btf.name(r.file_name_off),
                    // the kernel's BPF_LINE_INFO_LINE_NUM / _LINE_COL: line above bit 10, column below
                    line: r.line_col >> 10,
                    column: r.line_col & 0x3ff,
                    text: btf.name(r.line_off),
                })
                .collect())
        })
    }

    /// The instructions of function `prog` as libbpf hands them to the kernel (CO-RE relocated, its
    /// subprograms appended, map fds in its map loads), 8 bytes each: of the program `load_func` made with
    /// these arguments, or, with no `prog_type`, of the function loaded as the type its section names.
    pub fn func_insns(
        &self,
        prog: &str,
        prog_type: Option<u32>,
        attach_type: Option<u32>,
        device: Option<&str>,
    ) -> Result<Vec<u8>> {
        let how = self.how_loaded(prog, prog_type, attach_type, device)?;
        self.with_program(prog, how, |p| {
            let insns = p.insns();
            // SAFETY: bpf_insn is plain C data of 8 bytes without padding; the slice lives as long as `p`.
            let raw = unsafe { std::slice::from_raw_parts(insns.as_ptr().cast::<u8>(), std::mem::size_of_val(insns)) };
            Ok(raw.to_vec())
        })
    }
}
