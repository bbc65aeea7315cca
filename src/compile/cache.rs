//! Where compiled objects and per-kernel files live, and how they are keyed.
//!
//! The cache is a directory only its owner can use (0700, owned by the effective user, never group-
//! or world-writable), because a poisoned object there would run in the kernel.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The cache root: $RBCC_CACHE_DIR, else /var/cache/rbcc for root, else ~/.cache/rbcc.
pub fn root() -> Result<PathBuf> {
    let dir = if let Some(d) = std::env::var_os("RBCC_CACHE_DIR") {
        PathBuf::from(d)
    } else if unsafe_geteuid() == 0 {
        PathBuf::from("/var/cache/rbcc")
    } else if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        PathBuf::from(d).join("rbcc")
    } else if let Some(home) = std::env::var_os("HOME") {
        PathBuf::from(home).join(".cache").join("rbcc")
    } else {
        return Err(Error::Setup("no cache directory: set RBCC_CACHE_DIR".into()));
    };
    ensure_private_dir(&dir)?;
    Ok(dir)
}

fn unsafe_geteuid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Create `dir` (0700) if needed and refuse it unless it is ours and closed to others.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io(format!("creating cache directory {}", dir.display()), e))?;
    }
    let meta = fs::symlink_metadata(dir).map_err(|e| Error::io(format!("checking {}", dir.display()), e))?;
    if !meta.is_dir() || meta.uid() != unsafe_geteuid() {
        return Err(Error::Setup(format!(
            "cache directory {} is not a directory owned by this user; refusing to use it",
            dir.display()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(format!("restricting {}", dir.display()), e))?;
    }
    Ok(())
}

pub fn subdir(root: &Path, parts: &[&str]) -> Result<PathBuf> {
    let mut dir = root.to_path_buf();
    for p in parts {
        dir.push(p);
    }
    ensure_private_dir(&dir)?;
    Ok(dir)
}

/// sha256 over length-prefixed parts, so no two different part lists collide by concatenation.
pub fn key(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// What a cache entry holds: the object and the C it was compiled from.
pub struct Entry {
    pub object: Vec<u8>,
    pub rewritten: String,
}

/// What reading a cache entry found.
pub enum Found {
    Entry(Entry),
    Missing,
    /// Something is there, but not an entry this version wrote whole: why.
    Damaged(String),
}

const ENTRY_MAGIC: &[u8] = b"rbcc-entry-1\n";

/// Store an entry: one file, a digest of its contents in front, written atomically. The cache is a
/// file like any other, so what is read back is checked against the digest before it is trusted.
pub fn store(path: &Path, entry: &Entry) -> Result<()> {
    let mut body = Vec::with_capacity(8 + entry.object.len() + entry.rewritten.len());
    body.extend_from_slice(&(entry.object.len() as u64).to_le_bytes());
    body.extend_from_slice(&entry.object);
    body.extend_from_slice(entry.rewritten.as_bytes());
    let mut file = ENTRY_MAGIC.to_vec();
    file.extend_from_slice(hex::encode(Sha256::digest(&body)).as_bytes());
    file.extend_from_slice(&body);
    if fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        discard(path);
    }
    write_atomic(path, &file)
}

/// Read the entry at `path`, checked against its digest.
pub fn load(path: &Path) -> Found {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Found::Missing,
        Err(e) => return Found::Damaged(format!("unreadable: {e}")),
    };
    let Some(rest) = bytes.strip_prefix(ENTRY_MAGIC) else {
        return Found::Damaged("not an rbcc cache entry".into());
    };
    if rest.len() < 64 + 8 {
        return Found::Damaged("truncated".into());
    }
    let (digest, body) = rest.split_at(64);
    if hex::encode(Sha256::digest(body)).as_bytes() != digest {
        return Found::Damaged("its contents do not match their digest".into());
    }
    let len = u64::from_le_bytes(body[..8].try_into().expect("8 bytes")) as usize;
    let Some((object, text)) = body[8..].split_at_checked(len) else {
        return Found::Damaged("truncated".into());
    };
    match std::str::from_utf8(text) {
        Ok(text) => Found::Entry(Entry { object: object.to_vec(), rewritten: text.to_string() }),
        Err(_) => Found::Damaged("its C text is not UTF-8".into()),
    }
}

/// Remove whatever is at `path` (a file, or a directory someone put there).
pub fn discard(path: &Path) {
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        let _ = fs::remove_dir_all(path);
    } else {
        let _ = fs::remove_file(path);
    }
}

/// The hash of the running kernel's BTF, which keys every per-kernel file.
///
/// Hashing the BTF means reading ~5 MB from sysfs (~8 ms, most of a cache hit). It cannot change
/// while the kernel runs, so it is remembered per boot (`/proc/sys/kernel/random/boot_id`) in the
/// cache; a new boot, possibly of another kernel, hashes it again.
pub fn kernel_btf_hash(root: &Path) -> Result<String> {
    if crate::kernel::btf::custom_btf().is_some() {
        // a file named by the environment may change between runs of one boot
        return Ok(crate::kernel::btf::btf_hash()?.to_string());
    }
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let boot: String = boot.trim().chars().filter(|c| c.is_ascii_hexdigit() || *c == '-').collect();
    let memo = (!boot.is_empty()).then(|| root.join(format!("boot-{boot}")));
    if let Some(text) = memo.as_ref().and_then(|m| fs::read_to_string(m).ok()) {
        if text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(text);
        }
    }
    let hash = crate::kernel::btf::btf_hash()?.to_string();
    if let Some(memo) = memo {
        let _ = write_atomic(&memo, hash.as_bytes());
    }
    Ok(hash)
}

/// A temporary name beside `path`, unique to this thread and call: threads of one process may write
/// the same entry at once.
fn temp_beside(path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp{}-{n}", std::process::id()))
}

/// Write `data` to `path` atomically (temp file, then rename), so readers never see half an object.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = temp_beside(path);
    fs::write(&tmp, data).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(format!("renaming {}", tmp.display()), e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_any_damage_is_seen() {
        let dir = std::env::temp_dir().join(format!("rbcc-entry-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.entry");
        assert!(matches!(load(&path), Found::Missing));
        store(&path, &Entry { object: b"\x7fELF object".to_vec(), rewritten: "int x;\n".into() }).unwrap();
        let Found::Entry(e) = load(&path) else { panic!("entry not read back") };
        assert_eq!((e.object.as_slice(), e.rewritten.as_str()), (&b"\x7fELF object"[..], "int x;\n"));
        let good = fs::read(&path).unwrap();
        for at in [ENTRY_MAGIC.len() + 70, good.len() - 1] {
            let mut bad = good.clone();
            bad[at] ^= 1;
            fs::write(&path, &bad).unwrap();
            assert!(matches!(load(&path), Found::Damaged(ref w) if w.contains("digest")), "flip at {at}");
        }
        fs::write(&path, &good[..good.len() / 2]).unwrap();
        assert!(matches!(load(&path), Found::Damaged(_)));
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert!(matches!(load(&path), Found::Damaged(_)));
        store(&path, &Entry { object: vec![1], rewritten: String::new() }).unwrap();
        assert!(matches!(load(&path), Found::Entry(_)));
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp files left");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn key_separates_parts() {
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]));
        assert_eq!(key(&[b"x"]).len(), 64);
    }

    #[test]
    fn private_dir_is_0700() {
        let dir = std::env::temp_dir().join(format!("rbcc-cache-test-{}", std::process::id()));
        ensure_private_dir(&dir.join("a/b")).unwrap();
        let mode = fs::metadata(dir.join("a/b")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::remove_dir_all(&dir).unwrap();
    }
}
