//! Maps that outlive one BPF object or cross between objects: pinned under bpffs
//! (`BPF_TABLE_PINNED`), exported to later programs of this process (`BPF_TABLE_PUBLIC`/`_SHARED`) and
//! used there as `BPF_TABLE("extern", ...)`.
//!
//! The rewriter records these wishes as strings in the object's `.rbcc.maps` section ("pin MAP PATH",
//! "export MAP", "extern MAP"), so a cached object carries them too; libbpf skips the section.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use libbpf_rs::{MapCore, MapHandle, OpenObject};
use object::{Object as _, ObjectSection as _};

use crate::error::{Error, Result};

const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The sharing an object's maps ask for.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sharing {
    pins: Vec<(String, String)>,
    exports: Vec<String>,
    externs: Vec<String>,
}

/// Maps exported by loaded objects: name → (exporting object, the map).
static EXPORTED: Mutex<Option<HashMap<String, (u64, MapHandle)>>> = Mutex::new(None);
static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

impl Sharing {
    /// What `elf`'s `.rbcc.maps` section asks for (nothing if it has none).
    pub fn read(elf: &[u8]) -> Result<Sharing> {
        let bad = |e: object::Error| Error::Setup(format!("reading the compiled object's map records: {e}"));
        let file = object::File::parse(elf).map_err(bad)?;
        let mut sharing = Sharing::default();
        if let Some(section) = file.section_by_name(".rbcc.maps") {
            for record in section.data().map_err(bad)?.split(|&b| b == 0).filter(|r| !r.is_empty()) {
                sharing.add(&String::from_utf8_lossy(record));
            }
        }
        Ok(sharing)
    }

    fn add(&mut self, record: &str) {
        let mut parts = record.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("pin"), Some(map), Some(path)) => self.pins.push((map.into(), path.into())),
            (Some("export"), Some(map), None) => self.exports.push(map.into()),
            (Some("extern"), Some(map), None) => self.externs.push(map.into()),
            _ => {}
        }
    }

    /// Before the load: pinned maps get their path (libbpf reuses a compatible map pinned there, or
    /// creates and pins one), extern maps take the exported map's fd.
    pub fn prepare(&self, open: &mut OpenObject) -> Result<()> {
        if !self.pins.is_empty() {
            mount_bpffs()?;
        }
        let exported = EXPORTED.lock().unwrap_or_else(|e| e.into_inner());
        for mut map in open.maps_mut() {
            let name = map.name().to_string_lossy().into_owned();
            if let Some((_, path)) = self.pins.iter().find(|(m, _)| *m == name) {
                map.set_pin_path(path).map_err(|e| Error::libbpf(format!("pinning map '{name}' at {path}"), e))?;
            }
            if self.externs.contains(&name) {
                let Some((_, handle)) = exported.as_ref().and_then(|m| m.get(&name)) else {
                    return Err(Error::Load(format!(
                        "map '{name}' is declared \"extern\", but no loaded program of this process exports it \
                         (BPF_TABLE_PUBLIC or BPF_TABLE_SHARED)"
                    )));
                };
                map.reuse_fd(handle.as_fd()).map_err(|e| Error::libbpf(format!("using exported map '{name}'"), e))?;
            }
        }
        Ok(())
    }

    /// Why a load failed, if a pinned map was the cause (libbpf only says "error reusing pinned map").
    pub fn explain_failure(&self, libbpf_log: &str) -> Option<String> {
        let (map, path) =
            self.pins.iter().find(|(m, _)| libbpf_log.contains(&format!("map '{m}': error reusing pinned map")))?;
        Some(format!(
            "the map pinned at {path} differs from this declaration of '{map}' (type, key or value size, \
             max entries or flags); remove it (rm {path}) or pin this map elsewhere"
        ))
    }

    /// After the load: export the maps asked for, for as long as the returned guard lives.
    pub fn publish(&self, obj: &libbpf_rs::Object) -> Result<Exports> {
        let owner = NEXT_OWNER.fetch_add(1, Ordering::Relaxed);
        let mut exported = EXPORTED.lock().unwrap_or_else(|e| e.into_inner());
        let table = exported.get_or_insert_with(HashMap::new);
        for name in &self.exports {
            let Some(map) = obj.maps().find(|m| m.name() == name.as_str()) else { continue };
            let handle = MapHandle::try_from(&map).map_err(|e| Error::libbpf("duplicating a map fd", e))?;
            table.insert(name.clone(), (owner, handle));
        }
        Ok(Exports { owner })
    }
}

/// Withdraws an object's exported maps when the object goes away, as bcc does at cleanup.
#[derive(Debug)]
pub struct Exports {
    owner: u64,
}

impl Drop for Exports {
    fn drop(&mut self) {
        let mut exported = EXPORTED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(table) = exported.as_mut() {
            table.retain(|_, (owner, _)| *owner != self.owner);
        }
    }
}

/// Pinning needs a bpffs at /sys/fs/bpf; mount one there if there is none (as systemd does at boot).
fn mount_bpffs() -> Result<()> {
    let path = std::ffi::CString::new(BPFFS).expect("no NUL");
    // SAFETY: statfs only writes into the zeroed struct we own; path is NUL-terminated.
    let is_bpffs = unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(path.as_ptr(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC
    };
    if is_bpffs {
        return Ok(());
    }
    // SAFETY: every pointer is NUL-terminated and outlives the call.
    let rc = unsafe { libc::mount(c"bpf".as_ptr(), path.as_ptr(), c"bpf".as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(Error::io(
            format!("no bpffs at {BPFFS} to pin maps in, and mounting one failed (mount -t bpf bpf {BPFFS})"),
            err,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_back() {
        let mut s = Sharing::default();
        for r in ["pin counts /sys/fs/bpf/my dir/counts", "export shared", "extern other", "junk"] {
            s.add(r);
        }
        assert_eq!(s.pins, vec![("counts".to_string(), "/sys/fs/bpf/my dir/counts".to_string())]);
        assert_eq!(s.exports, vec!["shared".to_string()]);
        assert_eq!(s.externs, vec!["other".to_string()]);
    }
}
