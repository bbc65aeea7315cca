//! Map access: a `Map` handle owns a duplicate of the map's fd, so it stays usable on its own.
//!
//! Element operations go through libbpf-rs. The batch operations call libbpf directly: libbpf-rs's
//! batch iterator ends silently on errors and refuses per-CPU maps, while bcc's batch API has to
//! report an unsupported map type and read per-CPU values too.

use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::{AsRawLibbpf, MapCore, MapFlags, MapHandle};

use crate::btf::{Btf, TypeDesc};
use crate::error::{Error, Result};
use crate::map_walk::batch_opts;

const BPF_MAP_TYPE_PERCPU_HASH: u32 = 5;
const BPF_MAP_TYPE_PERCPU_ARRAY: u32 = 6;
const BPF_MAP_TYPE_LRU_PERCPU_HASH: u32 = 10;
const BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: u32 = 21;

/// The kernel's internal "operation not supported" (ENOTSUPP), which reaches user space as is when a
/// map type has no batch operations.
const ENOTSUPP: i32 = 524;

pub struct Map {
    handle: MapHandle,
    name: String,
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    /// The flags the kernel created the map with (BPF_F_NO_PREALLOC, BPF_F_RDONLY_PROG, ...).
    flags: u32,
    /// The kernel's id of the map, unique while it exists (`bpftool map show id N`).
    id: u32,
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
        // Asked of the kernel, not read from the object: the flags libbpf passed are what the map has
        // only if nothing changed them on the way (a pinned or shared map made by another object).
        let info = handle.info().map_err(|e| Error::libbpf(format!("reading map '{name}' from the kernel"), e))?.info;
        Ok(Map {
            // libbpf's own number: libbpf-rs folds types newer than it knows into "unknown".
            map_type,
            key_size: m.key_size(),
            value_size: m.value_size(),
            max_entries: m.max_entries(),
            flags: info.map_flags,
            id: info.id,
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
            return Error::kernel_feature(
                format!("{} on maps of type {}", op.command(), self.map_type),
                "the entry-by-entry operations (lookup, update, delete), which rbcc's tables fall back to",
                format!(
                    "{} is not supported for map '{}' (type {}) by this kernel",
                    op.command(),
                    self.name,
                    self.map_type
                ),
            );
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

impl Map {
    pub fn name(&self) -> &str {
        &self.name
    }
    /// libbpf's BPF_MAP_TYPE_* number.
    pub fn map_type(&self) -> u32 {
        self.map_type
    }
    pub fn key_size(&self) -> u32 {
        self.key_size
    }
    pub fn value_size(&self) -> u32 {
        self.value_size
    }
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }
    pub fn fd(&self) -> i32 {
        self.raw_fd()
    }
    /// The flags the kernel created the map with (`bpf_map_info.map_flags`).
    pub fn flags(&self) -> u32 {
        self.flags
    }
    /// The kernel's id of the map.
    pub fn id(&self) -> u32 {
        self.id
    }
    pub fn key_type(&self) -> Option<&TypeDesc> {
        self.key_type.as_ref()
    }
    pub fn value_type(&self) -> Option<&TypeDesc> {
        self.value_type.as_ref()
    }

    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.handle.lookup(key, MapFlags::ANY).map_err(|e| self.err("lookup", e))
    }

    pub fn lookup_percpu(&self, key: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        self.handle.lookup_percpu(key, MapFlags::ANY).map_err(|e| self.err("per-CPU lookup", e))
    }

    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<()> {
        let flags = MapFlags::from_bits_truncate(flags);
        self.handle.update(key, value, flags).map_err(|e| self.err("update", e))
    }

    pub fn update_percpu(&self, key: &[u8], values: &[Vec<u8>], flags: u64) -> Result<()> {
        let flags = MapFlags::from_bits_truncate(flags);
        self.handle.update_percpu(key, values, flags).map_err(|e| self.err("per-CPU update", e))
    }

    /// Delete `key`; false when it was not there.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        match self.handle.delete(key) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.err("delete", e)),
        }
    }

    /// Up to `max` keys, in the kernel's order, after key `after` (from the first with None), appended
    /// to `out` end to end; the number appended, fewer than `max` once the walk reached the end. A walk
    /// goes on where the last one stopped by passing its last key.
    pub fn next_keys(&self, after: Option<&[u8]>, max: usize, out: &mut Vec<u8>) -> usize {
        let size = self.key_size as usize;
        if size == 0 || after.is_some_and(|k| k.len() != size) {
            return 0; // queues and stacks have no keys
        }
        let start = out.len();
        out.reserve(max * size);
        let mut found = 0;
        while found < max {
            let at = out.len();
            out.resize(at + size, 0);
            let base = out.as_mut_ptr();
            let prev: *const u8 = match (at > start, after) {
                // SAFETY: at - size is the start of the previous key, inside `out`.
                (true, _) => unsafe { base.add(at - size) },
                (false, Some(key)) => key.as_ptr(),
                (false, None) => std::ptr::null(),
            };
            // SAFETY: prev is null or `size` readable bytes (a key of this map); base + at has `size`
            // writable bytes (just added), which do not overlap prev; the kernel writes the next key there.
            let ret = unsafe { libbpf_sys::bpf_map_get_next_key(self.raw_fd(), prev.cast(), base.add(at).cast()) };
            if ret != 0 {
                // the end (ENOENT), or a map that cannot be walked: what was found is the answer
                out.truncate(at);
                break;
            }
            found += 1;
        }
        found
    }

    /// The key after `key` in the kernel's order (the first with None); None at the end of the map.
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>> {
        if let Some(k) = key {
            if k.len() != self.key_size as usize {
                let msg = format!("a key of {} bytes, not {}", self.key_size, k.len());
                return Err(invalid(&self.name, msg));
            }
        }
        let mut out = Vec::new();
        Ok((self.next_keys(key, 1, &mut out) == 1).then_some(out))
    }

    /// Queue/stack: add `value` (flags: BPF_EXIST makes a full map drop its oldest entry).
    pub fn push(&self, value: &[u8], flags: u64) -> Result<()> {
        match self.handle.update(&[], value, MapFlags::from_bits_truncate(flags)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == libbpf_rs::ErrorKind::TooBig => Err(Error::io(
                format!("push to map '{}'", self.name),
                std::io::Error::other(format!(
                    "it is full ({} entries); push with flags=BPF_EXIST to drop the oldest entry instead",
                    self.max_entries
                )),
            )),
            Err(e) => Err(self.err("push", e)),
        }
    }

    /// Queue/stack: remove and return the next value; None when the map is empty.
    pub fn pop(&self) -> Result<Option<Vec<u8>>> {
        self.handle.lookup_and_delete(&[]).map_err(|e| self.err("pop", e))
    }

    /// Queue/stack: the next value without removing it; None when the map is empty.
    pub fn peek(&self) -> Result<Option<Vec<u8>>> {
        self.handle.lookup(&[], MapFlags::ANY).map_err(|e| self.err("peek", e))
    }

    /// Bytes each value takes in the batch buffers (per-CPU maps: every CPU's copy, 8-byte aligned).
    pub fn batch_value_size(&self) -> Result<usize> {
        self.value_stride()
    }

    /// Every entry as (keys, values), the entries laid end to end (values batch_value_size apart);
    /// with `delete`, deleting what it returns (hash maps only; the kernel refuses arrays).
    pub fn read_batch(&self, delete: bool) -> Result<(Vec<u8>, Vec<u8>)> {
        let op = if delete { BatchOp::LookupAndDelete } else { BatchOp::Lookup };
        let walk = crate::map_walk::Walk {
            fd: self.raw_fd(),
            map_type: self.map_type,
            key_size: self.key_size as usize,
            stride: self.value_stride()?,
            max_entries: self.max_entries as usize,
            delete,
        };
        walk.read_all().map_err(|errno| self.batch_error(op, errno))
    }

    /// Write entries laid end to end, in one syscall; flags apply to each element (BPF_ANY, ...).
    pub fn update_batch(&self, keys: &[u8], values: &[u8], flags: u64) -> Result<()> {
        let count = self.records("keys", keys, self.key_size as usize)?;
        let stride = self.value_stride()?;
        if self.records("values", values, stride)? != count {
            let msg = format!("{count} keys but {} values in a batch update", values.len() / stride);
            return Err(invalid(&self.name, msg));
        }
        let mut done = count as u32;
        let opts = batch_opts(flags);
        // SAFETY: keys and values hold `done` whole entries each (checked above); the kernel only
        // reads them, and writes the number it processed into done.
        let ret = unsafe {
            libbpf_sys::bpf_map_update_batch(
                self.raw_fd(),
                keys.as_ptr().cast(),
                values.as_ptr().cast(),
                &mut done,
                &opts,
            )
        };
        if ret >= 0 {
            return Ok(());
        }
        match self.batch_error(BatchOp::Update, -ret) {
            Error::Io { context, source } => Err(Error::Io {
                context: format!("{context}, at entry #{done} of {count} (the ones before it were written)"),
                source,
            }),
            other => Err(other),
        }
    }

    /// Delete the keys laid end to end, in one syscall; a Lookup error at the first key not in the map.
    pub fn delete_batch(&self, keys: &[u8]) -> Result<()> {
        let count = self.records("keys", keys, self.key_size as usize)?;
        let mut done = count as u32;
        let opts = batch_opts(0);
        // SAFETY: keys holds `done` whole keys (checked above); the kernel only reads them and
        // writes the number it deleted into done.
        let ret = unsafe { libbpf_sys::bpf_map_delete_batch(self.raw_fd(), keys.as_ptr().cast(), &mut done, &opts) };
        match -ret.min(0) {
            0 => Ok(()),
            libc::ENOENT => Err(Error::Lookup(format!(
                "map '{}': key #{done} of the batch is not in the map (the {done} before it were deleted)",
                self.name
            ))),
            errno => Err(self.batch_error(BatchOp::Delete, errno)),
        }
    }
}

fn invalid(map: &str, msg: String) -> Error {
    Error::io(format!("map '{map}'"), std::io::Error::new(std::io::ErrorKind::InvalidInput, msg))
}

/// The number of possible CPUs (per-CPU maps hold one value for each).
pub fn num_possible_cpus() -> Result<usize> {
    libbpf_rs::num_possible_cpus().map_err(|e| Error::libbpf("counting possible CPUs", e))
}
