//! Map access: a `Map` handle owns a duplicate of the map's fd, so it stays usable on its own.
//!
//! Element operations go through libbpf-rs. The batch operations call libbpf directly: libbpf-rs's
//! batch iterator ends silently on errors and refuses per-CPU maps, while bcc's batch API has to
//! report an unsupported map type and read per-CPU values too.

use std::os::fd::{AsFd, AsRawFd};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use libbpf_rs::{AsRawLibbpf, MapCore, MapFlags, MapHandle};

use crate::error::{Error, Result};
use crate::types::{Btf, TypeDesc};

const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
const BPF_MAP_TYPE_LRU_PERCPU_HASH: u32 = 10;
const BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: u32 = 21;

/// The kernel's internal "operation not supported" (ENOTSUPP), which reaches user space as is when a
/// map type has no batch operations.
const ENOTSUPP: i32 = 524;

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
        let (key_id, value_id, map_type) = unsafe {
            (
                libbpf_sys::bpf_map__btf_key_type_id(raw),
                libbpf_sys::bpf_map__btf_value_type_id(raw),
                libbpf_sys::bpf_map__type(raw),
            )
        };
        let name = m.name().to_string_lossy().into_owned();
        // libbpf creates queues, stacks and fd maps without BTF ids (the kernel refuses them there),
        // so their types come from the map's definition in the object instead.
        let describe = |id: u32, field: &str| {
            let b = btf?;
            let id = if id != 0 { id } else { b.map_def_type(&name, field)? };
            Some(b.describe(id))
        };
        let handle = MapHandle::try_from(m).map_err(|e| Error::libbpf("duplicating a map fd", e))?;
        Ok(Map {
            // libbpf's own number: libbpf-rs folds types newer than it knows into "unknown".
            map_type,
            key_size: m.key_size(),
            value_size: m.value_size(),
            max_entries: m.max_entries(),
            key_type: describe(key_id, "key"),
            value_type: describe(value_id, "value"),
            handle,
            name,
        })
    }

    fn err(&self, what: &str, e: libbpf_rs::Error) -> Error {
        Error::libbpf(format!("{what} in map '{}'", self.name), e)
    }

    fn raw_fd(&self) -> i32 {
        self.handle.as_fd().as_raw_fd()
    }

    fn is_percpu(&self) -> bool {
        matches!(
            self.map_type,
            BPF_MAP_TYPE_PERCPU_HASH
                | BPF_MAP_TYPE_PERCPU_ARRAY
                | BPF_MAP_TYPE_LRU_PERCPU_HASH
                | BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE
        )
    }

    /// Bytes one value takes in a batch buffer: per-CPU maps hold one 8-byte-aligned copy per CPU.
    fn value_stride(&self) -> Result<usize> {
        if !self.is_percpu() {
            return Ok(self.value_size as usize);
        }
        let cpus = libbpf_rs::num_possible_cpus().map_err(|e| Error::libbpf("counting possible CPUs", e))?;
        Ok((self.value_size as usize).div_ceil(8) * 8 * cpus)
    }

    fn batch_error(&self, op: BatchOp, errno: i32) -> Error {
        let unsupported = errno == ENOTSUPP
            || errno == libc::EOPNOTSUPP
            // Kernels before 5.6 don't know the batch commands at all; our arguments are always
            // valid for the read and delete commands, so EINVAL there means the same.
            || (errno == libc::EINVAL && op != BatchOp::Update);
        if unsupported {
            return Error::KernelFeature(format!(
                "{} is not supported for map '{}' (type {}) by this kernel",
                op.command(),
                self.name,
                self.map_type
            ));
        }
        Error::io(format!("{} on map '{}'", op.command(), self.name), std::io::Error::from_raw_os_error(errno))
    }

    /// Check that `data` holds whole records of `size` bytes; the number of records.
    fn records(&self, what: &str, data: &[u8], size: usize) -> Result<usize> {
        if size == 0 || !data.len().is_multiple_of(size) {
            let msg = format!("{what} of {} bytes are not whole {size}-byte entries", data.len());
            return Err(invalid(&self.name, msg));
        }
        Ok(data.len() / size)
    }

    /// Another owned fd for the same map (perf and ring buffers keep their own).
    pub fn dup_handle(&self) -> Result<MapHandle> {
        MapHandle::try_from(&self.handle).map_err(|e| Error::libbpf("duplicating a map fd", e))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BatchOp {
    Lookup,
    LookupAndDelete,
    Update,
    Delete,
}

impl BatchOp {
    fn command(self) -> &'static str {
        match self {
            BatchOp::Lookup => "BPF_MAP_LOOKUP_BATCH",
            BatchOp::LookupAndDelete => "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
            BatchOp::Update => "BPF_MAP_UPDATE_BATCH",
            BatchOp::Delete => "BPF_MAP_DELETE_BATCH",
        }
    }
}

// The struct update covers the padding bpf_map_batch_opts has on some targets (none on x86-64).
#[allow(clippy::needless_update)]
pub(crate) fn batch_opts(elem_flags: u64) -> libbpf_sys::bpf_map_batch_opts {
    libbpf_sys::bpf_map_batch_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_batch_opts>() as _,
        elem_flags,
        flags: 0,
        ..Default::default()
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
        self.raw_fd()
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

    /// Queue/stack: add `value` (flags: BPF_EXIST makes a full map drop its oldest entry).
    #[pyo3(signature = (value, flags=0))]
    fn push(&self, value: &[u8], flags: u64) -> PyResult<()> {
        match self.handle.update(&[], value, MapFlags::from_bits_truncate(flags)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == libbpf_rs::ErrorKind::TooBig => Err(Error::io(
                format!("push to map '{}'", self.name),
                std::io::Error::other(format!(
                    "it is full ({} entries); push with flags=BPF_EXIST to drop the oldest entry instead",
                    self.max_entries
                )),
            )
            .into()),
            Err(e) => Err(self.err("push", e).into()),
        }
    }

    /// Queue/stack: remove and return the next value; None when the map is empty.
    fn pop<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let v = self.handle.lookup_and_delete(&[]).map_err(|e| self.err("pop", e))?;
        Ok(v.map(|v| PyBytes::new(py, &v)))
    }

    /// Queue/stack: the next value without removing it; None when the map is empty.
    fn peek<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let v = self.handle.lookup(&[], MapFlags::ANY).map_err(|e| self.err("peek", e))?;
        Ok(v.map(|v| PyBytes::new(py, &v)))
    }

    /// Bytes each value takes in the batch buffers (per-CPU maps: every CPU's copy, 8-byte aligned).
    #[getter]
    fn batch_value_size(&self) -> PyResult<usize> {
        Ok(self.value_stride()?)
    }

    /// Every entry as (keys, values), the entries laid end to end (values batch_value_size apart).
    fn lookup_batch<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        self.read_batch(py, BatchOp::Lookup)
    }

    /// As lookup_batch, deleting what it returns (hash maps only; the kernel refuses arrays).
    fn lookup_and_delete_batch<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        self.read_batch(py, BatchOp::LookupAndDelete)
    }

    /// Write entries laid end to end, in one syscall; flags apply to each element (BPF_ANY, ...).
    #[pyo3(signature = (keys, values, flags=0))]
    fn update_batch(&self, py: Python<'_>, keys: &[u8], values: &[u8], flags: u64) -> PyResult<()> {
        let count = self.records("keys", keys, self.key_size as usize)?;
        let stride = self.value_stride()?;
        if self.records("values", values, stride)? != count {
            let msg = format!("{count} keys but {} values in a batch update", values.len() / stride);
            return Err(invalid(&self.name, msg).into());
        }
        let fd = self.raw_fd();
        let (ret, done) = py.detach(|| {
            let mut n = count as u32;
            let opts = batch_opts(flags);
            // SAFETY: keys and values hold `n` whole entries each (checked above); the kernel only
            // reads them, and writes the number it processed into n.
            let ret = unsafe {
                libbpf_sys::bpf_map_update_batch(fd, keys.as_ptr().cast(), values.as_ptr().cast(), &mut n, &opts)
            };
            (ret, n)
        });
        if ret >= 0 {
            return Ok(());
        }
        match self.batch_error(BatchOp::Update, -ret) {
            Error::Io { context, source } => Err(Error::Io {
                context: format!("{context}, at entry #{done} of {count} (the ones before it were written)"),
                source,
            }
            .into()),
            other => Err(other.into()),
        }
    }

    /// Delete the keys laid end to end, in one syscall; KeyError at the first key not in the map.
    fn delete_batch(&self, py: Python<'_>, keys: &[u8]) -> PyResult<()> {
        let count = self.records("keys", keys, self.key_size as usize)?;
        let fd = self.raw_fd();
        let (ret, done) = py.detach(|| {
            let mut n = count as u32;
            let opts = batch_opts(0);
            // SAFETY: keys holds `n` whole keys (checked above); the kernel only reads them and
            // writes the number it deleted into n.
            let ret = unsafe { libbpf_sys::bpf_map_delete_batch(fd, keys.as_ptr().cast(), &mut n, &opts) };
            (ret, n)
        });
        match -ret.min(0) {
            0 => Ok(()),
            libc::ENOENT => Err(Error::Lookup(format!(
                "map '{}': key #{done} of the batch is not in the map (the {done} before it were deleted)",
                self.name
            ))
            .into()),
            errno => Err(self.batch_error(BatchOp::Delete, errno).into()),
        }
    }
}

impl Map {
    fn read_batch<'py>(&self, py: Python<'py>, op: BatchOp) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let walk = crate::map_walk::Walk {
            fd: self.raw_fd(),
            map_type: self.map_type,
            key_size: self.key_size as usize,
            stride: self.value_stride()?,
            max_entries: self.max_entries as usize,
            delete: op == BatchOp::LookupAndDelete,
        };
        let (keys, values) = py.detach(|| walk.read_all()).map_err(|errno| self.batch_error(op, errno))?;
        Ok((PyBytes::new(py, &keys), PyBytes::new(py, &values)))
    }
}

fn invalid(map: &str, msg: String) -> Error {
    Error::io(format!("map '{map}'"), std::io::Error::new(std::io::ErrorKind::InvalidInput, msg))
}

/// The number of possible CPUs (per-CPU maps hold one value for each).
#[pyfunction]
pub fn num_possible_cpus() -> PyResult<usize> {
    libbpf_rs::num_possible_cpus().map_err(|e| Error::libbpf("counting possible CPUs", e).into())
}
