//! The toolchain: which clang binary compiles and which libclang parses, and their LLVM versions, found
//! once per process without running anything.
//!
//! clang-sys finds both by running `llvm-config` and the clang binary (`--version`, `-E -v` twice):
//! four processes and ~100 ms on every compile, for facts that change only when the toolchain is
//! upgraded. Here they come from the file system alone: the environment's choice (`RBCC_CLANG`,
//! `LIBCLANG_PATH`), else the `clang` on `PATH` and the libclang of the same LLVM installation beside
//! it, else the newest `clang-N` / `/usr/lib/llvm-N` that has both. Versions come from the paths
//! (`/usr/lib/llvm-19/bin/clang`, `clang-19`, `libclang-19.so.1`, `libclang.so.19.1`); only when none
//! says (an `RBCC_CLANG` in a directory of its own) does `checked()`, on a cache miss, run
//! `clang --version`. A cache hit runs nothing. An upgrade shows in `identity()` (paths, sizes and
//! mtimes), which is part of every cache key.
//!
//! A pair whose major versions differ is refused (the parse would read a PCH the compile's clang wrote,
//! and the two would disagree on the dialect's builtins), and so is a version outside `SUPPORTED`, the
//! range `make test-toolchains` measured (`llvm::SUPPORTED`, less `llvm::BROKEN`). What differs between
//! the supported versions is handled in one place, `llvm.rs`.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::llvm;
use crate::error::{Error, Result};

/// The clang binary and the libclang shared library of one LLVM installation, with their major
/// versions where the paths tell them (libclang may be unknown: then clang-sys searches for it itself,
/// the slow way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    pub clang: PathBuf,
    pub libclang: Option<PathBuf>,
    pub clang_version: Option<u32>,
    pub libclang_version: Option<u32>,
}

/// Why a toolchain is refused: kept to make an `Error::Toolchain` each time it is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    clang: String,
    libclang: String,
    message: String,
}

impl Refusal {
    fn error(&self) -> Error {
        Error::Toolchain { clang: self.clang.clone(), libclang: self.libclang.clone(), message: self.message.clone() }
    }
}

const NOT_FOUND: &str =
    "cannot find clang; install it (Debian/Ubuntu: apt-get install clang; Fedora: dnf install clang) \
     or set RBCC_CLANG";

/// The toolchain, found on first use: refused when the paths show a mismatched pair or an unsupported
/// version.
pub fn toolchain() -> Result<&'static Toolchain> {
    static FOUND: OnceLock<std::result::Result<Toolchain, Refusal>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
            let found = find(env("RBCC_CLANG"), env("LIBCLANG_PATH"), env("PATH"), Path::new("/usr/lib"));
            found
                .ok_or_else(|| Refusal { clang: String::new(), libclang: String::new(), message: NOT_FOUND.into() })
                .and_then(|t| check(&t).map(|()| t))
        })
        .as_ref()
        .map_err(Refusal::error)
}

/// The toolchain about to compile (a cache miss): as `toolchain()`, and when its path does not tell
/// clang's version, `clang --version` says it (once per process), so a mismatch is refused before the
/// compile rather than found in a confusing diagnostic.
pub fn checked() -> Result<Toolchain> {
    static RAN: OnceLock<std::result::Result<Toolchain, Refusal>> = OnceLock::new();
    let found = toolchain()?;
    if found.clang_version.is_some() {
        return Ok(found.clone());
    }
    RAN.get_or_init(|| {
        let mut t = found.clone();
        t.clang_version = Command::new(&t.clang)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| version_in_banner(&String::from_utf8_lossy(&o.stdout)));
        // a libclang of that version, where none came with the binary (a wrapper script, a copy)
        if t.libclang.is_none() {
            t.libclang = t.clang_version.and_then(|v| libclang_of_version(v, Path::new("/usr/lib")));
            t.libclang_version = t.libclang.as_deref().and_then(libclang_version_of);
        }
        check(&t).map(|()| t)
    })
    .clone()
    .map_err(|r| r.error())
}

/// Whether the libclang loaded, whose version its path did not tell, reports (`clang_getClangVersion`:
/// "clang version 19.1.7 ...") the same major version as the clang binary.
pub fn check_loaded_libclang(banner: &str) -> Result<()> {
    let mut t = checked()?;
    if t.libclang_version.is_none() {
        t.libclang_version = version_in_banner(banner);
        check(&t).map_err(|r| r.error())?;
    }
    Ok(())
}

/// The major version in clang's banner ("Debian clang version 14.0.6", "clang version 19.1.7 (...)").
pub fn version_in_banner(banner: &str) -> Option<u32> {
    let rest = &banner[banner.find("clang version ")? + "clang version ".len()..];
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn check(t: &Toolchain) -> std::result::Result<(), Refusal> {
    let show = |p: &Path, v: Option<u32>| match v {
        Some(v) => format!("{} (LLVM {v})", p.display()),
        None => p.display().to_string(),
    };
    let clang = show(&t.clang, t.clang_version);
    let libclang = t.libclang.as_deref().map(|l| show(l, t.libclang_version)).unwrap_or_default();
    let refuse = |message: String| Err(Refusal { clang: clang.clone(), libclang: libclang.clone(), message });
    if let (Some(a), Some(b)) = (t.clang_version, t.libclang_version) {
        if a != b {
            return refuse(format!(
                "clang {clang} and libclang {libclang} are of different LLVM versions: set RBCC_CLANG and \
                 LIBCLANG_PATH to one installation's (e.g. /usr/lib/llvm-{a}/bin/clang and /usr/lib/llvm-{a}/lib)"
            ));
        }
    }
    for v in [t.clang_version, t.libclang_version].into_iter().flatten() {
        if let Some(why) = llvm::refusal(v) {
            let e = llvm::SUPPORTED.end();
            return refuse(format!(
                "clang {clang} and libclang {libclang}: {why}; install a supported one (Debian/Ubuntu: apt-get \
                 install clang-{e} libclang1-{e}; Fedora: dnf install clang clang-libs) or point RBCC_CLANG and \
                 LIBCLANG_PATH at one"
            ));
        }
    }
    Ok(())
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

/// The toolchain the environment names or, failing that, the best pair found: the `clang` on PATH with
/// a libclang of its version (unless that version is refused), else the newest supported version that
/// has both, else the newest pair, else any clang (its libclang left to clang-sys). `lib` is where distributions install LLVMs side by side (`/usr/lib/llvm-N`).
fn find(
    rbcc_clang: Option<OsString>,
    libclang_path: Option<OsString>,
    path: Option<OsString>,
    lib: &Path,
) -> Option<Toolchain> {
    let env_lib = libclang_path.as_deref().map(Path::new).and_then(libclang_at);
    let pair = |clang: PathBuf, libclang: Option<PathBuf>| {
        let clang_version = clang_version_of(&clang);
        let libclang = libclang
            .or_else(|| libclang_beside(&clang))
            .or_else(|| clang_version.and_then(|v| libclang_of_version(v, lib)));
        let libclang_version = libclang.as_deref().and_then(libclang_version_of);
        Toolchain { clang, libclang, clang_version, libclang_version }
    };
    if let Some(clang) = rbcc_clang {
        return Some(pair(PathBuf::from(clang), env_lib));
    }
    if let Some(l) = env_lib {
        let version = libclang_version_of(&l);
        let clang = llvm_root_of_lib(&l)
            .map(|root| root.join("bin/clang"))
            .filter(|c| is_executable(c))
            .or_else(|| {
                version.and_then(|v| {
                    candidates(path.as_deref(), lib).into_iter().find(|(cv, _)| *cv == Some(v)).map(|(_, c)| c)
                })
            })
            .or_else(|| on_path("clang", path.as_deref()))?;
        return Some(pair(clang, Some(l)));
    }
    let matching = |t: &Toolchain| t.libclang.is_some() && t.clang_version == t.libclang_version;
    let usable = |t: &Toolchain| matching(t) && t.clang_version.is_some_and(|v| llvm::refusal(v).is_none());
    // the plain `clang` on PATH, when its own libclang is there: no directory is listed
    if let Some(clang) = on_path("clang", path.as_deref()) {
        let t = pair(clang, None);
        if usable(&t) || (t.libclang.is_some() && t.clang_version.is_none()) {
            return Some(t);
        }
    }
    let mut all: Vec<Toolchain> = candidates(path.as_deref(), lib).into_iter().map(|(_, c)| pair(c, None)).collect();
    all.sort_by_key(|t| (usable(t), matching(t), t.clang_version));
    all.pop()
}

/// Every clang found with its version: `clang` and `clang-N` on PATH, `<lib>/llvm-N/bin/clang`.
fn candidates(path: Option<&std::ffi::OsStr>, lib: &Path) -> Vec<(Option<u32>, PathBuf)> {
    let mut found = Vec::new();
    for dir in path.map(std::env::split_paths).into_iter().flatten() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name == "clang"
                || name.strip_prefix("clang-").is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            {
                found.push(e.path());
            }
        }
    }
    for e in fs::read_dir(lib).into_iter().flatten().flatten() {
        if e.file_name().to_str().is_some_and(|n| n.starts_with("llvm-")) {
            found.push(e.path().join("bin/clang"));
        }
    }
    found.retain(|c| is_executable(c));
    found.into_iter().map(|c| (clang_version_of(&c), c)).collect()
}

/// The major version of an LLVM installation's clang, from its path or the path it links to:
/// `/usr/lib/llvm-19/bin/clang`, Fedora's `/usr/bin/clang-19`.
fn clang_version_of(clang: &Path) -> Option<u32> {
    let real = fs::canonicalize(clang).ok();
    let found = [Some(clang), real.as_deref()]
        .into_iter()
        .flatten()
        .find_map(|p| llvm_dir_version(p).or_else(|| p.file_name()?.to_str()?.strip_prefix("clang-")?.parse().ok()));
    found
}

/// The major version of a libclang, from its path or the path it links to: `/usr/lib/llvm-19/lib/...`,
/// `libclang-19.so.1` (Debian), `libclang.so.19.1` (Fedora).
fn libclang_version_of(lib: &Path) -> Option<u32> {
    let real = fs::canonicalize(lib).ok();
    let found = [Some(lib), real.as_deref()]
        .into_iter()
        .flatten()
        .find_map(|p| llvm_dir_version(p).or_else(|| soname_version(p.file_name()?.to_str()?)));
    found
}

/// `libclang-19.so.1` → 19, `libclang.so.19.1` → 19; not Debian's `libclang.so.1`, whose 1 is the ABI's.
fn soname_version(name: &str) -> Option<u32> {
    if let Some(rest) = name.strip_prefix("libclang-") {
        return rest.split('.').next()?.parse().ok();
    }
    let v: u32 = name.strip_prefix("libclang.so.")?.split('.').next()?.parse().ok()?;
    (v > 1).then_some(v)
}

/// The N of an `llvm-N` directory the path goes through.
fn llvm_dir_version(p: &Path) -> Option<u32> {
    p.components().rev().find_map(|c| c.as_os_str().to_str()?.strip_prefix("llvm-")?.parse().ok())
}

/// The libclang of `<lib>/llvm-<version>` (Debian's libclang1-N without its clang beside it).
fn libclang_of_version(version: u32, lib: &Path) -> Option<PathBuf> {
    libclang_in(&lib.join(format!("llvm-{version}/lib")))
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

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

#[cfg(test)]
#[path = "toolchain_tests.rs"]
mod tests;
