//! `Map`: one BPF map of a loaded object, for rbcc's tables (python/rbcc/table*.py).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::typedesc::type_desc;
use crate::maps;

/// Keys read per GIL-free stretch of a walk: a few milliseconds of syscalls between checks for Ctrl-C.
const KEYS_PER_WALK: usize = 4096;

#[pyclass(module = "rbcc._core", frozen)]
pub struct Map {
    pub(super) inner: maps::Map,
}

fn bytes<'py>(py: Python<'py>, value: Option<Vec<u8>>) -> Option<Bound<'py, PyBytes>> {
    value.map(|v| PyBytes::new(py, &v))
}

#[pymethods]
impl Map {
    #[getter]
    fn name(&self) -> &str {
        self.inner.name()
    }
    #[getter]
    fn map_type(&self) -> u32 {
        self.inner.map_type()
    }
    #[getter]
    fn key_size(&self) -> u32 {
        self.inner.key_size()
    }
    #[getter]
    fn value_size(&self) -> u32 {
        self.inner.value_size()
    }
    #[getter]
    fn max_entries(&self) -> u32 {
        self.inner.max_entries()
    }
    #[getter]
    fn fd(&self) -> i32 {
        self.inner.fd()
    }
    /// The flags the kernel created the map with (BPF_F_NO_PREALLOC, ...).
    #[getter]
    fn flags(&self) -> u32 {
        self.inner.flags()
    }
    /// The kernel's id of the map.
    #[getter]
    fn id(&self) -> u32 {
        self.inner.id()
    }

    fn key_type<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.inner.key_type().map(|t| type_desc(py, t)).transpose()
    }

    fn value_type<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.inner.value_type().map(|t| type_desc(py, t)).transpose()
    }

    fn lookup<'py>(&self, py: Python<'py>, key: &[u8]) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(bytes(py, self.inner.lookup(key)?))
    }

    fn lookup_percpu<'py>(&self, py: Python<'py>, key: &[u8]) -> PyResult<Option<Vec<Bound<'py, PyBytes>>>> {
        let values = self.inner.lookup_percpu(key)?;
        Ok(values.map(|vals| vals.iter().map(|v| PyBytes::new(py, v)).collect()))
    }

    #[pyo3(signature = (key, value, flags=0))]
    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> PyResult<()> {
        Ok(self.inner.update(key, value, flags)?)
    }

    #[pyo3(signature = (key, values, flags=0))]
    fn update_percpu(&self, key: &[u8], values: Vec<Vec<u8>>, flags: u64) -> PyResult<()> {
        Ok(self.inner.update_percpu(key, &values, flags)?)
    }

    /// Delete `key`; false when it was not there.
    fn delete(&self, key: &[u8]) -> PyResult<bool> {
        Ok(self.inner.delete(key)?)
    }

    /// Every key, walked without the GIL a chunk at a time, with a check for signals (Ctrl-C) between
    /// chunks.
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let size = self.inner.key_size() as usize;
        let (mut keys, mut chunk, mut last) = (Vec::new(), Vec::new(), None::<Vec<u8>>);
        loop {
            chunk.clear();
            let after = last.as_deref();
            let found = py.detach(|| self.inner.next_keys(after, KEYS_PER_WALK, &mut chunk));
            keys.extend(chunk.chunks_exact(size.max(1)).map(|k| PyBytes::new(py, k)));
            if found < KEYS_PER_WALK {
                return Ok(keys);
            }
            py.check_signals()?;
            last = Some(chunk[chunk.len() - size..].to_vec());
        }
    }

    /// The key after `key` in the kernel's order (the first with None); None at the end.
    #[pyo3(signature = (key=None))]
    fn next_key<'py>(&self, py: Python<'py>, key: Option<&[u8]>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(bytes(py, self.inner.next_key(key)?))
    }

    /// Queue/stack: add `value` (flags: BPF_EXIST makes a full map drop its oldest entry).
    #[pyo3(signature = (value, flags=0))]
    fn push(&self, value: &[u8], flags: u64) -> PyResult<()> {
        Ok(self.inner.push(value, flags)?)
    }

    /// Queue/stack: remove and return the next value; None when the map is empty.
    fn pop<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(bytes(py, self.inner.pop()?))
    }

    /// Queue/stack: the next value without removing it; None when the map is empty.
    fn peek<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(bytes(py, self.inner.peek()?))
    }

    /// Bytes each value takes in the batch buffers (per-CPU maps: every CPU's copy, 8-byte aligned).
    #[getter]
    fn batch_value_size(&self) -> PyResult<usize> {
        Ok(self.inner.batch_value_size()?)
    }

    /// Every entry as (keys, values), the entries laid end to end (values batch_value_size apart).
    fn lookup_batch<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        self.read_batch(py, false)
    }

    /// As lookup_batch, deleting what it returns (hash maps only; the kernel refuses arrays).
    fn lookup_and_delete_batch<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        self.read_batch(py, true)
    }

    /// Write entries laid end to end, in one syscall; flags apply to each element (BPF_ANY, ...).
    #[pyo3(signature = (keys, values, flags=0))]
    fn update_batch(&self, py: Python<'_>, keys: &[u8], values: &[u8], flags: u64) -> PyResult<()> {
        Ok(py.detach(|| self.inner.update_batch(keys, values, flags))?)
    }

    /// Delete the keys laid end to end, in one syscall; KeyError at the first key not in the map.
    fn delete_batch(&self, py: Python<'_>, keys: &[u8]) -> PyResult<()> {
        Ok(py.detach(|| self.inner.delete_batch(keys))?)
    }
}

impl Map {
    fn read_batch<'py>(&self, py: Python<'py>, delete: bool) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let (keys, values) = py.detach(|| self.inner.read_batch(delete))?;
        Ok((PyBytes::new(py, &keys), PyBytes::new(py, &values)))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Map>()
}
