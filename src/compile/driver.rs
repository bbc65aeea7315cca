//! The clang driver: `-target bpf` compilation of the rewritten C into an ELF object with BTF.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::error::{Error, Result};

/// The clang executable that matches the libclang clang-sys loads (same LLVM), found once.
pub fn clang() -> Result<PathBuf> {
    static CLANG: OnceLock<Option<PathBuf>> = OnceLock::new();
    CLANG
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("RBCC_CLANG") {
                return Some(PathBuf::from(p));
            }
            clang_sys::support::Clang::find(None, &[]).map(|c| c.path)
        })
        .clone()
        .ok_or_else(|| {
            Error::Setup("cannot find clang; install it (Debian: apt-get install clang) or set RBCC_CLANG".into())
        })
}

/// The `__TARGET_ARCH_*` libbpf's bpf_tracing.h needs to read registers.
pub fn target_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        "s390x" => "s390",
        "powerpc64" => "powerpc",
        "riscv64" => "riscv",
        "loongarch64" => "loongarch",
        other => other,
    }
}

/// Flags shared by the libclang parse, the clang compile and the prelude's PCHs.
pub fn common_flags(kernel_dir: &Path, include_dir: &Path) -> Vec<String> {
    let mut flags: Vec<String> = vec![
        "-target".into(),
        "bpf".into(),
        "-std=gnu11".into(),
        format!("-D__TARGET_ARCH_{}", target_arch()),
        "-D__BPF_TRACING__".into(),
        format!("-I{}", kernel_dir.display()),
        format!("-I{}", include_dir.display()),
    ];
    for w in [
        "-Wno-unused-value",
        "-Wno-pointer-sign",
        "-Wno-compare-distinct-pointer-types",
        "-Wno-gnu-variable-sized-type-not-at-end",
        "-Wno-address-of-packed-member",
        "-Wno-tautological-compare",
        "-Wno-unknown-warning-option",
        "-Wno-unused-function",
        "-Wno-int-conversion",
        "-Wno-incompatible-pointer-types-discards-qualifiers",
    ] {
        flags.push(w.into());
    }
    flags
}

/// Precompile `header` into the PCH `output`.
pub fn precompile(header: &Path, output: &Path, flags: &[String]) -> Result<()> {
    let out = Command::new(clang()?)
        .args(flags)
        .args(["-fno-color-diagnostics", "-x", "c-header"])
        .arg(header)
        .arg("-o")
        .arg(output)
        .output()
        .map_err(|e| Error::io("running clang", e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(Error::Compile(format!(
        "clang could not precompile {}:\n{}",
        header.display(),
        String::from_utf8_lossy(&out.stderr)
    )))
}

/// Compile `source` (a file) to `object`; on failure, clang's diagnostics name `display_name`.
pub fn compile(source: &Path, object: &Path, flags: &[String], display_name: &str) -> Result<()> {
    let out = Command::new(clang()?)
        .args(flags)
        .args(["-fno-color-diagnostics", "-c"])
        .arg(source)
        .arg("-o")
        .arg(object)
        .output()
        .map_err(|e| Error::io("running clang", e))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr).replace(&source.display().to_string(), display_name);
    Err(Error::Compile(format!("clang could not compile the program:\n{}", text.trim_end())))
}
