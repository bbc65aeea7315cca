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

/// What `rbcc doctor` shows of the toolchain: `(clang, clang_version, libclang, libclang_version,
/// refusal, the supported versions)`. Found as a compile would (and `clang --version` run where its
/// path does not tell its version); a refused toolchain gives the names its refusal has and the
/// refusal's one line.
type ToolchainReport = (Option<String>, Option<u32>, Option<String>, Option<u32>, Option<String>, Vec<u32>);

#[pyfunction]
fn toolchain(py: Python<'_>) -> ToolchainReport {
    use pipeline::toolchain as tc;
    let supported = pipeline::llvm::supported();
    let named = |s: String| (!s.is_empty()).then_some(s);
    match py.detach(tc::checked) {
        Ok(t) => (
            Some(t.clang.display().to_string()),
            t.clang_version,
            t.libclang.map(|l| l.display().to_string()),
            t.libclang_version,
            None,
            supported,
        ),
        Err(crate::error::Error::Toolchain { clang, libclang, message }) => {
            (named(clang), None, named(libclang), None, Some(message), supported)
        }
        Err(other) => (None, None, None, None, Some(other.to_string()), supported),
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Compiled>()?;
    m.add_function(wrap_pyfunction!(toolchain, m)?)?;
    m.add_function(wrap_pyfunction!(compile, m)?)
}
