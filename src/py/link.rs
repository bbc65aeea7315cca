//! `Link`: one attachment; detaching it (or dropping it) removes the probe.

use pyo3::prelude::*;

#[pyclass(module = "rbcc._core")]
pub struct Link {
    link: Option<libbpf_rs::Link>,
}

impl From<libbpf_rs::Link> for Link {
    fn from(link: libbpf_rs::Link) -> Self {
        Link { link: Some(link) }
    }
}

#[pymethods]
impl Link {
    fn detach(&mut self) {
        self.link = None;
    }

    #[getter]
    fn attached(&self) -> bool {
        self.link.is_some()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Link>()
}
