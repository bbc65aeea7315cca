//! `Object`: a loaded BPF object (src/load.rs), its functions loaded and attached on demand
//! (src/attach.rs), its maps handed out as `Map`s. Loading (the verifier can take seconds) and
//! attaching run without the GIL.
//!
//! As bcc does, a program the verifier rejects has its log printed to stderr (Python's `sys.stderr`, so
//! a notebook shows it), and with a log level (bcc's DEBUG_BPF) so has every program loaded; the
//! `VerifierError` raised carries the log too. `print_log=False` keeps it off stderr.

use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::link::Link;
use super::map::Map;
use super::typedesc::type_desc;
use crate::error::Error;
use crate::load;

#[pyclass(module = "rbcc._core")]
pub struct Object {
    inner: load::Object,
    print_log: AtomicBool,
}

/// Write `text` to Python's sys.stderr; a stderr that is gone or fails is no reason to lose the error
/// being reported, so what goes wrong here is ignored.
fn write_stderr(py: Python<'_>, text: &str) {
    if let Ok(stderr) = py.import("sys").and_then(|sys| sys.getattr("stderr")) {
        if !stderr.is_none() {
            let _ = stderr.call_method1("write", (text,));
            let _ = stderr.call_method0("flush");
        }
    }
}

/// What bcc prints when the verifier rejects a program: the reason, the log, then hints.
fn print_rejection(py: Python<'_>, err: &Error) {
    let Error::Verifier { message, log, .. } = err else { return };
    let reason = message.lines().next().unwrap_or_default();
    let reason = reason.strip_prefix("the BPF verifier rejected the program: ").unwrap_or(reason);
    let mut text = format!("bpf: Failed to load program: {reason}\n{log}\n");
    for hint in crate::libbpf_log::hints(log) {
        text.push_str(&format!("\nHINT: {hint}\n"));
    }
    write_stderr(py, &text);
}

/// `err` as Python sees it; a verifier rejection printed first when `printing`, and its error then says
/// so (`VerifierError.log_printed`), so that what reports it need not print the log again.
fn rejected(py: Python<'_>, err: Error, printing: bool) -> PyErr {
    let printed = printing && matches!(err, Error::Verifier { .. });
    if printed {
        print_rejection(py, &err);
    }
    let py_err = PyErr::from(err);
    if printed {
        let _ = py_err.value(py).setattr("log_printed", true);
    }
    py_err
}

impl Object {
    /// `result` as Python sees it, the verifier's logs printed first (see the module's comment).
    fn report<T>(&self, py: Python<'_>, result: crate::error::Result<T>) -> PyResult<T> {
        let logs = self.inner.take_load_logs(); // taken either way: they are for this call only
        let printing = self.print_log.load(Ordering::Relaxed);
        if printing {
            for (prog, log) in logs {
                write_stderr(py, &format!("bpf: verifier log of {prog}:\n{log}\n"));
            }
        }
        result.map_err(|e| rejected(py, e, printing))
    }
}

#[pymethods]
impl Object {
    /// Load ELF `obj`; `log_level` 1 or 2 has the verifier log every program loaded (bcc's DEBUG_BPF,
    /// DEBUG_BPF_REGISTER_STATE), printed to stderr unless `print_log` is false, as is the log of a
    /// program the verifier rejects.
    #[new]
    #[pyo3(signature = (obj, name, log_level=0, print_log=true))]
    fn py_new(py: Python<'_>, obj: &[u8], name: &str, log_level: u32, print_log: bool) -> PyResult<Self> {
        match py.detach(|| load::Object::load(obj, name, log_level)) {
            Ok(inner) => {
                let object = Object { inner, print_log: AtomicBool::new(print_log) };
                object.report(py, Ok(()))?;
                Ok(object)
            }
            Err(e) => Err(rejected(py, e, print_log)),
        }
    }

    /// Whether verifier logs go to stderr (see the constructor).
    #[getter]
    fn print_log(&self) -> bool {
        self.print_log.load(Ordering::Relaxed)
    }
    #[setter]
    fn set_print_log(&self, on: bool) {
        self.print_log.store(on, Ordering::Relaxed);
    }

    /// (function name, ELF section) of every program.
    fn programs(&self) -> Vec<(String, String)> {
        self.inner.programs()
    }

    /// The user's maps (libbpf's internal .rodata/.bss/.data maps left out).
    fn map_names(&self) -> Vec<String> {
        self.inner.map_names()
    }

    fn map(&self, name: &str) -> PyResult<Map> {
        Ok(Map { inner: self.inner.map(name)? })
    }

    /// The type of the records the program sends through perf/ring buffer `map_name`.
    fn event_type<'py>(&self, py: Python<'py>, map_name: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.inner.event_type(map_name).map(|t| type_desc(py, &t)).transpose()
    }

    /// The fd of function `prog`, loaded (as the type its section names) if it was not yet.
    fn prog_fd(&self, py: Python<'_>, prog: &str) -> PyResult<i32> {
        let r = py.detach(|| self.inner.prog_fd(prog));
        self.report(py, r)
    }

    /// Load function `prog` as program type `prog_type` (bcc's `load_func`), with `attach_type` as its
    /// expected attach type and bound to network device `device` when given; returns the program's fd.
    #[pyo3(signature = (prog, prog_type, attach_type=None, device=None))]
    fn load_func(
        &self,
        py: Python<'_>,
        prog: &str,
        prog_type: u32,
        attach_type: Option<u32>,
        device: Option<&str>,
    ) -> PyResult<i32> {
        let r = py.detach(|| self.inner.load_func(prog, prog_type, attach_type, device));
        self.report(py, r)
    }

    /// The instructions of function `prog` as libbpf hands them to the kernel, 8 bytes each.
    #[pyo3(signature = (prog, prog_type=None, attach_type=None, device=None))]
    fn func_insns<'py>(
        &self,
        py: Python<'py>,
        prog: &str,
        prog_type: Option<u32>,
        attach_type: Option<u32>,
        device: Option<&str>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let r = py.detach(|| self.inner.func_insns(prog, prog_type, attach_type, device));
        let bytes = self.report(py, r)?;
        Ok(PyBytes::new(py, &bytes))
    }

    fn attach_kprobe(&self, py: Python<'_>, prog: &str, func: &str, retprobe: bool) -> PyResult<Link> {
        let r = py.detach(|| self.inner.attach_kprobe(prog, func, retprobe));
        Ok(self.report(py, r)?.into())
    }

    /// Attach `prog` to every function of `funcs` through one kprobe multi link.
    fn attach_kprobe_multi(&self, py: Python<'_>, prog: &str, funcs: Vec<String>, retprobe: bool) -> PyResult<Link> {
        let r = py.detach(|| self.inner.attach_kprobe_multi(prog, &funcs, retprobe));
        Ok(self.report(py, r)?.into())
    }

    fn attach_tracepoint(&self, py: Python<'_>, prog: &str, category: &str, name: &str) -> PyResult<Link> {
        let r = py.detach(|| self.inner.attach_tracepoint(prog, category, name));
        Ok(self.report(py, r)?.into())
    }

    fn attach_raw_tracepoint(&self, py: Python<'_>, prog: &str, name: &str) -> PyResult<Link> {
        let r = py.detach(|| self.inner.attach_raw_tracepoint(prog, name));
        Ok(self.report(py, r)?.into())
    }

    /// Attach an fentry/fexit (`KFUNC_PROBE`) or LSM (`LSM_PROBE`) program to what its section names.
    fn attach_btf(&self, py: Python<'_>, prog: &str) -> PyResult<Link> {
        let r = py.detach(|| self.inner.attach_btf(prog));
        Ok(self.report(py, r)?.into())
    }

    /// A new read fd of the BPF_ITER function `prog` (over map `map` for a map iterator).
    #[pyo3(signature = (prog, map=None))]
    fn iter_fd(&self, py: Python<'_>, prog: &str, map: Option<&str>) -> PyResult<i32> {
        use std::os::fd::IntoRawFd;
        let r = py.detach(|| self.inner.iter_fd(prog, map));
        Ok(self.report(py, r)?.into_raw_fd())
    }

    #[pyo3(signature = (prog, retprobe, pid, path, offset, func_name=None))]
    #[allow(clippy::too_many_arguments)]
    fn attach_uprobe(
        &self,
        py: Python<'_>,
        prog: &str,
        retprobe: bool,
        pid: i32,
        path: &str,
        offset: usize,
        func_name: Option<&str>,
    ) -> PyResult<Link> {
        let r = py.detach(|| self.inner.attach_uprobe(prog, retprobe, pid, path, offset, func_name));
        Ok(self.report(py, r)?.into())
    }

    fn attach_usdt(
        &self,
        py: Python<'_>,
        prog: &str,
        pid: i32,
        path: &str,
        provider: &str,
        name: &str,
    ) -> PyResult<Link> {
        let r = py.detach(|| self.inner.attach_usdt(prog, pid, path, provider, name));
        Ok(self.report(py, r)?.into())
    }

    #[allow(clippy::too_many_arguments)]
    fn attach_perf_event(
        &self,
        py: Python<'_>,
        prog: &str,
        ev_type: u32,
        ev_config: u64,
        sample_period: u64,
        sample_freq: u64,
        pid: i32,
        cpu: i32,
        group_fd: i32,
    ) -> PyResult<Link> {
        let inner = &self.inner;
        let r = py.detach(|| {
            inner.attach_perf_event(prog, ev_type, ev_config, sample_period, sample_freq, pid, cpu, group_fd)
        });
        Ok(self.report(py, r)?.into())
    }

    /// Attach `prog` to a perf event described by `attr`, a whole `struct perf_event_attr` (bcc's
    /// `attach_perf_event_raw`); `cookie` is what `bpf_get_attach_cookie()` returns in the program.
    #[pyo3(signature = (prog, attr, pid, cpu, group_fd, cookie=0))]
    #[allow(clippy::too_many_arguments)]
    fn attach_perf_event_raw(
        &self,
        py: Python<'_>,
        prog: &str,
        attr: &[u8],
        pid: i32,
        cpu: i32,
        group_fd: i32,
        cookie: u64,
    ) -> PyResult<Link> {
        let r = py.detach(|| self.inner.attach_perf_event_raw(prog, attr, pid, cpu, group_fd, cookie));
        Ok(self.report(py, r)?.into())
    }

    /// (first instruction, file, line, column, text) of each source line of `prog`'s instructions (those
    /// `func_insns` returns for the same arguments), from the object's BTF line info.
    #[pyo3(signature = (prog, prog_type=None, attach_type=None, device=None))]
    #[allow(clippy::type_complexity)]
    fn func_lines(
        &self,
        py: Python<'_>,
        prog: &str,
        prog_type: Option<u32>,
        attach_type: Option<u32>,
        device: Option<&str>,
    ) -> PyResult<Vec<(u32, String, u32, u32, String)>> {
        let r = py.detach(|| self.inner.func_lines(prog, prog_type, attach_type, device));
        Ok(self.report(py, r)?.into_iter().map(|l| (l.insn, l.file, l.line, l.column, l.text)).collect())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Object>()
}
