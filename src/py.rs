//! Python entry points for the compile stage and kernel facts.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::compile as pipeline;

#[pyclass(module = "rbcc._core", frozen)]
pub struct Compiled {
    object: Vec<u8>,
    #[pyo3(get)]
    rewritten: String,
    #[pyo3(get)]
    cache_hit: bool,
}

#[pymethods]
impl Compiled {
    #[getter]
    fn object<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.object)
    }
}

/// Rewrite and compile bcc-dialect C (or fetch it from the cache), with the GIL released.
#[pyfunction]
#[pyo3(signature = (text, cflags, filename))]
pub fn compile(py: Python<'_>, text: String, cflags: Vec<String>, filename: String) -> PyResult<Compiled> {
    let out = py.detach(move || pipeline::compile(&text, &cflags, &filename))?;
    Ok(Compiled { object: out.object, rewritten: out.rewritten, cache_hit: out.cache_hit })
}

/// The tracefs mount point, mounting tracefs when it is missing.
#[pyfunction]
pub fn tracefs() -> PyResult<String> {
    Ok(crate::kernel::tracefs::tracefs()?.display().to_string())
}

#[pyfunction]
pub fn has_kprobes() -> bool {
    crate::kernel::features::has_kprobes()
}

/// Whether this kernel has kprobe multi links (one link, many kernel functions), probed once.
#[pyfunction]
pub fn has_kprobe_multi() -> bool {
    crate::kernel::features::has_kprobe_multi()
}

/// Whether fentry/fexit programs (bcc's kfuncs) load and attach here, probed once.
#[pyfunction]
pub fn has_fentry() -> bool {
    crate::kernel::features::has_fentry()
}

/// Whether the running kernel's struct (or union) `name` has a member `field`, from its BTF.
#[pyfunction]
pub fn kernel_struct_has_field(py: Python<'_>, name: String, field: String) -> PyResult<bool> {
    Ok(py.detach(|| crate::kernel::btf::with_vmlinux(|btf| btf.record_has_member(&name, &field)))?)
}

/// Whether the running kernel's enum `name` has an enumerator `value`, from its BTF.
#[pyfunction]
pub fn kernel_enum_has_val(py: Python<'_>, name: String, value: String) -> PyResult<bool> {
    Ok(py.detach(|| crate::kernel::btf::with_vmlinux(|btf| btf.enum_has_value(&name, &value)))?)
}

/// Whether BPF LSM programs load and attach here, probed once.
#[pyfunction]
pub fn has_lsm() -> bool {
    crate::kernel::features::has_lsm()
}
