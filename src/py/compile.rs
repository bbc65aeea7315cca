//! `compile`: bcc-dialect C → a BPF object (src/compile/), with the GIL released.

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
fn compile(py: Python<'_>, text: String, cflags: Vec<String>, filename: String) -> PyResult<Compiled> {
    let out = py.detach(move || pipeline::compile(&text, &cflags, &filename))?;
    Ok(Compiled { object: out.object, rewritten: out.rewritten, cache_hit: out.cache_hit })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Compiled>()?;
    m.add_function(wrap_pyfunction!(compile, m)?)
}
