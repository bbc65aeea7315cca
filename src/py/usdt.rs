//! `usdt_sites`: the USDT probes an ELF file declares (src/usdt.rs); rbcc.usdt matches bcc's probe
//! names against them.

use pyo3::prelude::*;

use crate::usdt::{self, Site};

/// The USDT probe sites of the ELF file at `path`.
#[pyfunction]
fn usdt_sites(py: Python<'_>, path: &str) -> PyResult<Vec<Site>> {
    Ok(py.detach(|| usdt::sites_in_file(path))?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(usdt_sites, m)?)
}
