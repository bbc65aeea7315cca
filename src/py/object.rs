//! `Object`: a loaded BPF object (src/load.rs), its functions loaded and attached on demand
//! (src/attach.rs), its maps handed out as `Map`s. Loading (the verifier can take seconds) and
//! attaching run without the GIL.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::link::Link;
use super::map::Map;
use super::typedesc::type_desc;
use crate::load;

#[pyclass(module = "rbcc._core")]
pub struct Object {
    inner: load::Object,
}

#[pymethods]
impl Object {
    #[new]
    fn py_new(py: Python<'_>, obj: &[u8], name: &str) -> PyResult<Self> {
        Ok(Object { inner: py.detach(|| load::Object::load(obj, name))? })
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
        Ok(py.detach(|| self.inner.prog_fd(prog))?)
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
        Ok(py.detach(|| self.inner.load_func(prog, prog_type, attach_type, device))?)
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
        let bytes = py.detach(|| self.inner.func_insns(prog, prog_type, attach_type, device))?;
        Ok(PyBytes::new(py, &bytes))
    }

    fn attach_kprobe(&self, py: Python<'_>, prog: &str, func: &str, retprobe: bool) -> PyResult<Link> {
        Ok(py.detach(|| self.inner.attach_kprobe(prog, func, retprobe))?.into())
    }

    /// Attach `prog` to every function of `funcs` through one kprobe multi link.
    fn attach_kprobe_multi(&self, py: Python<'_>, prog: &str, funcs: Vec<String>, retprobe: bool) -> PyResult<Link> {
        Ok(py.detach(|| self.inner.attach_kprobe_multi(prog, &funcs, retprobe))?.into())
    }

    fn attach_tracepoint(&self, py: Python<'_>, prog: &str, category: &str, name: &str) -> PyResult<Link> {
        Ok(py.detach(|| self.inner.attach_tracepoint(prog, category, name))?.into())
    }

    fn attach_raw_tracepoint(&self, py: Python<'_>, prog: &str, name: &str) -> PyResult<Link> {
        Ok(py.detach(|| self.inner.attach_raw_tracepoint(prog, name))?.into())
    }

    /// Attach an fentry/fexit (`KFUNC_PROBE`) or LSM (`LSM_PROBE`) program to what its section names.
    fn attach_btf(&self, py: Python<'_>, prog: &str) -> PyResult<Link> {
        Ok(py.detach(|| self.inner.attach_btf(prog))?.into())
    }

    /// A new read fd of the BPF_ITER function `prog` (over map `map` for a map iterator).
    #[pyo3(signature = (prog, map=None))]
    fn iter_fd(&self, py: Python<'_>, prog: &str, map: Option<&str>) -> PyResult<i32> {
        use std::os::fd::IntoRawFd;
        Ok(py.detach(|| self.inner.iter_fd(prog, map))?.into_raw_fd())
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
        Ok(py.detach(|| self.inner.attach_uprobe(prog, retprobe, pid, path, offset, func_name))?.into())
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
        Ok(py.detach(|| self.inner.attach_usdt(prog, pid, path, provider, name))?.into())
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
    ) -> PyResult<Link> {
        let inner = &self.inner;
        let link =
            py.detach(|| inner.attach_perf_event(prog, ev_type, ev_config, sample_period, sample_freq, pid, cpu))?;
        Ok(link.into())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Object>()
}
