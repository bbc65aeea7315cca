//! The toolchain: which clang binary compiles and which libclang parses, found once per process
//! without running anything.
//!
//! clang-sys finds both by running `llvm-config` and the clang binary (`--version`, `-E -v` twice):
//! four processes and ~100 ms on every compile, for facts that change only when the toolchain is
//! upgraded. Here they come from the file system alone: the environment's choice (`RBCC_CLANG`,
//! `LIBCLANG_PATH`), else the `clang` on `PATH` and the libclang of the same LLVM installation beside
//! it, else the newest `/usr/lib/llvm-N`. An upgrade shows in `identity()` (paths, sizes and mtimes),
//! which is part of every cache key.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The clang binary and the libclang shared library of one LLVM installation (libclang may be unknown:
/// then clang-sys searches for it itself, the slow way).
#[derive(Debug, Clone)]
pub struct Toolchain {
    pub clang: PathBuf,
    pub libclang: Option<PathBuf>,
}

/// The toolchain, found on first use.
pub fn toolchain() -> Result<&'static Toolchain> {
    static FOUND: OnceLock<Option<Toolchain>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            find(std::env::var_os("RBCC_CLANG"), std::env::var_os("LIBCLANG_PATH"), std::env::var_os("PATH"))
        })
        .as_ref()
        .ok_or_else(|| {
            Error::Setup("cannot find clang; install it (Debian: apt-get install clang) or set RBCC_CLANG".into())
        })
}

/// What identifies the toolchain's build output: both files' real paths, sizes and modification times.
pub fn identity() -> String {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| match toolchain() {
        Ok(t) => {
            format!("{}\0{}", file_identity(&t.clang), t.libclang.as_deref().map(file_identity).unwrap_or_default())
        }
        Err(_) => String::new(),
    })
    .clone()
}

fn file_identity(path: &Path) -> String {
    let real = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    match fs::metadata(&real) {
        Ok(m) => format!("{}\0{}\0{}", real.display(), m.len(), m.mtime()),
        Err(_) => real.display().to_string(),
    }
}

fn find(rbcc_clang: Option<OsString>, libclang_path: Option<OsString>, path: Option<OsString>) -> Option<Toolchain> {
    let libclang = libclang_path.as_deref().map(Path::new).and_then(libclang_at);
    let clang = match rbcc_clang {
        Some(p) => PathBuf::from(p),
        None => libclang
            .as_deref()
            .and_then(|lib| llvm_root_of_lib(lib).map(|root| root.join("bin/clang")).filter(|c| is_executable(c)))
            .or_else(|| on_path("clang", path.as_deref()))
            .or_else(newest_llvm_clang)?,
    };
    let libclang = libclang.or_else(|| libclang_beside(&clang));
    Some(Toolchain { clang, libclang })
}

/// LIBCLANG_PATH names the library itself or a directory holding it.
fn libclang_at(path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path.to_path_buf());
    }
    libclang_in(path)
}

/// The libclang in `dir`: the versioned names Debian and Fedora install first, then the bare one.
fn libclang_in(dir: &Path) -> Option<PathBuf> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("libclang") && (n.contains(".so.") || n.ends_with(".so")))
        .filter(|n| n == "libclang.so" || n.starts_with("libclang.so.") || n.starts_with("libclang-"))
        .filter(|n| !n.starts_with("libclang-cpp"))
        .collect();
    names.sort_by_key(|n| (n.matches('.').count() != 2, n.clone()));
    names.first().map(|n| dir.join(n))
}

/// `/usr/lib/llvm-14/lib/libclang.so.1` → `/usr/lib/llvm-14` (through symlinks: Debian's
/// `/usr/lib/x86_64-linux-gnu/libclang-14.so.1` is not inside its installation).
fn llvm_root_of_lib(lib: &Path) -> Option<PathBuf> {
    let dir = lib.parent()?;
    (dir.file_name()? == "lib" || dir.file_name()? == "lib64").then(|| dir.parent().map(Path::to_path_buf))?
}

/// The libclang of the LLVM installation the clang binary belongs to.
fn libclang_beside(clang: &Path) -> Option<PathBuf> {
    let real = fs::canonicalize(clang).ok()?;
    let root = real.parent()?.parent()?;
    ["lib", "lib64"].iter().find_map(|d| libclang_in(&root.join(d)))
}

fn on_path(name: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?).map(|d| d.join(name)).find(|p| is_executable(p))
}

/// The clang of the newest `/usr/lib/llvm-N` (Debian and Ubuntu install versions side by side there).
fn newest_llvm_clang() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.strip_prefix("llvm-")?.parse().ok()?;
            let clang = e.path().join("bin/clang");
            is_executable(&clang).then_some((version, clang))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, c)| c)
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn fake_llvm(root: &Path) -> (PathBuf, PathBuf) {
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::create_dir_all(root.join("lib")).unwrap();
        let clang = root.join("bin/clang");
        fs::write(&clang, "").unwrap();
        fs::set_permissions(&clang, fs::Permissions::from_mode(0o755)).unwrap();
        for n in ["libclang-cpp.so.19", "libclang.so", "libclang-19.so.1", "libclangBasic.a"] {
            fs::write(root.join("lib").join(n), "").unwrap();
        }
        (clang, root.join("lib/libclang-19.so.1"))
    }

    #[test]
    fn pairs_the_clang_on_path_with_its_own_libclang_through_symlinks() {
        let tmp = std::env::temp_dir().join(format!("rbcc-tc-{}", std::process::id()));
        let (clang, lib) = fake_llvm(&tmp.join("llvm-19"));
        fs::create_dir_all(tmp.join("bin")).unwrap();
        let _ = symlink(&clang, tmp.join("bin/clang"));
        let t = find(None, None, Some(tmp.join("bin").into_os_string())).unwrap();
        assert_eq!(t.clang, tmp.join("bin/clang"));
        assert_eq!(t.libclang.as_deref(), Some(fs::canonicalize(&lib).unwrap().as_path()));
        // LIBCLANG_PATH as a directory picks its clang too; RBCC_CLANG wins for the binary
        let t = find(None, Some(tmp.join("llvm-19/lib").into_os_string()), None).unwrap();
        assert_eq!((t.clang.as_path(), t.libclang.as_deref()), (clang.as_path(), Some(lib.as_path())));
        let t = find(Some("/opt/x/clang".into()), Some(lib.clone().into_os_string()), None).unwrap();
        assert_eq!((t.clang.as_path(), t.libclang.as_deref()), (Path::new("/opt/x/clang"), Some(lib.as_path())));
        let _ = fs::remove_dir_all(&tmp);
    }

    #[test]
    fn the_identity_changes_when_the_binary_does() {
        let tmp = std::env::temp_dir().join(format!("rbcc-tc-id-{}", std::process::id()));
        let (clang, _) = fake_llvm(&tmp);
        let before = file_identity(&clang);
        fs::write(&clang, "a newer clang").unwrap();
        assert_ne!(before, file_identity(&clang));
        let _ = fs::remove_dir_all(&tmp);
    }
}
