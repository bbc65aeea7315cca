//! Map access: a `Map` handle owns a duplicate of the map's fd, so it stays usable on its own.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use libbpf_rs::{AsRawLibbpf, MapCore, MapFlags, MapHandle};

use crate::error::{Error, Result};
use crate::types::{Btf, TypeDesc};

#[pyclass(module = "rbcc._core")]
pub struct Map {
    handle: MapHandle,
    name: String,
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    key_type: Option<TypeDesc>,
    value_type: Option<TypeDesc>,
}

impl Map {
    pub fn from_loaded(m: &libbpf_rs::Map<'_>, btf: Option<&Btf>) -> Result<Map> {
        let raw = m.as_libbpf_object().as_ptr();
        // SAFETY: raw is a live bpf_map of a loaded object; these getters only read it.
        let (key_id, value_id) =
            unsafe { (libbpf_sys::bpf_map__btf_key_type_id(raw), libbpf_sys::bpf_map__btf_value_type_id(raw)) };
        let describe = |id: u32| btf.filter(|_| id != 0).map(|b| b.describe(id));
        let handle = MapHandle::try_from(m).map_err(|e| Error::libbpf("duplicating a map fd", e))?;
        Ok(Map {
            name: m.name().to_string_lossy().into_owned(),
            map_type: u32::from(m.map_type()),
            key_size: m.key_size(),
            value_size: m.value_size(),
            max_entries: m.max_entries(),
            key_type: describe(key_id),
            value_type: describe(value_id),
            handle,
        })
    }

    fn err(&self, what: &str, e: libbpf_rs::Error) -> Error {
        Error::libbpf(format!("{what} in map '{}'", self.name), e)
    }
}

#[pymethods]
impl Map {
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }
    #[getter]
    fn map_type(&self) -> u32 {
        self.map_type
    }
    #[getter]
    fn key_size(&self) -> u32 {
        self.key_size
    }
    #[getter]
    fn value_size(&self) -> u32 {
        self.value_size
    }
    #[getter]
    fn max_entries(&self) -> u32 {
        self.max_entries
    }
    #[getter]
    fn fd(&self) -> i32 {
        use std::os::fd::{AsFd, AsRawFd};
        self.handle.as_fd().as_raw_fd()
    }

    fn key_type<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.key_type.as_ref().map(|t| t.to_py(py)).transpose()
    }

    fn value_type<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.value_type.as_ref().map(|t| t.to_py(py)).transpose()
    }

    fn lookup<'py>(&self, py: Python<'py>, key: &[u8]) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let v = self.handle.lookup(key, MapFlags::ANY).map_err(|e| self.err("lookup", e))?;
        Ok(v.map(|v| PyBytes::new(py, &v)))
    }

    fn lookup_percpu<'py>(&self, py: Python<'py>, key: &[u8]) -> PyResult<Option<Vec<Bound<'py, PyBytes>>>> {
        let v = self.handle.lookup_percpu(key, MapFlags::ANY).map_err(|e| self.err("per-CPU lookup", e))?;
        Ok(v.map(|vals| vals.iter().map(|v| PyBytes::new(py, v)).collect()))
    }

    #[pyo3(signature = (key, value, flags=0))]
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> PyResult<()> {
        let flags = MapFlags::from_bits_truncate(flags);
        Ok(self.handle.update(key, value, flags).map_err(|e| self.err("update", e))?)
    }

    #[pyo3(signature = (key, values, flags=0))]
    fn update_percpu(&self, key: &[u8], values: Vec<Vec<u8>>, flags: u64) -> PyResult<()> {
        let flags = MapFlags::from_bits_truncate(flags);
        Ok(self.handle.update_percpu(key, &values, flags).map_err(|e| self.err("per-CPU update", e))?)
    }

    /// Delete `key`; false when it was not there.
    fn delete(&self, key: &[u8]) -> PyResult<bool> {
        match self.handle.delete(key) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.err("delete", e).into()),
        }
    }

    fn keys<'py>(&self, py: Python<'py>) -> Vec<Bound<'py, PyBytes>> {
        self.handle.keys().map(|k| PyBytes::new(py, &k)).collect()
    }
}

/// The number of possible CPUs (per-CPU maps hold one value for each).
#[pyfunction]
pub fn num_possible_cpus() -> PyResult<usize> {
    libbpf_rs::num_possible_cpus().map_err(|e| Error::libbpf("counting possible CPUs", e).into())
}

impl Map {
    /// Another owned fd for the same map (perf and ring buffers keep their own).
    pub fn dup_handle(&self) -> Result<MapHandle> {
        MapHandle::try_from(&self.handle).map_err(|e| Error::libbpf("duplicating a map fd", e))
    }
}
