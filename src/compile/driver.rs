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
        // what a kernel's linux/version.h would say; KERNEL_VERSION() comes with libbpf's bpf_helpers.h
        format!("-DLINUX_VERSION_CODE={}", crate::kernel::version::linux_version_code()),
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
        // A call to an undeclared function would otherwise reach the loader as an unresolvable
        // extern; say at the user's line that the function does not exist.
        "-Werror=implicit-function-declaration",
    ] {
        flags.push(w.into());
    }
    flags
}

/// Run clang on `input` with `flags` and `mode` (its mode flags) writing `output`; clang's stderr on failure.
fn run(flags: &[String], mode: &[&str], input: &Path, output: &Path) -> Result<std::result::Result<(), String>> {
    let out = Command::new(clang()?)
        .args(flags)
        .arg("-fno-color-diagnostics")
        // a backend crash would otherwise leave a reproducer (the program and a script) in /tmp
        .arg("-fno-crash-diagnostics")
        .args(mode)
        .arg(input)
        .arg("-o")
        .arg(output)
        .output()
        .map_err(|e| Error::io("running clang", e))?;
    Ok(if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) })
}

/// Precompile `header` into the PCH `output`.
pub fn precompile(header: &Path, output: &Path, flags: &[String]) -> Result<()> {
    run(flags, &["-x", "c-header"], header, output)?
        .map_err(|err| Error::Compile(format!("clang could not precompile {}:\n{err}", header.display())))
}

/// Compile `source` (a file) to `object`; on failure, clang's diagnostics name `display_name`.
pub fn compile(source: &Path, object: &Path, flags: &[String], display_name: &str) -> Result<()> {
    run(flags, &["-c"], source, object)?.map_err(|err| {
        let text = without_crash_dump(&err.replace(&source.display().to_string(), display_name));
        Error::Compile(super::hints::explain(format!("clang could not compile the program:\n{}", text.trim_end())))
    })
}

/// clang's diagnostics without the dump a backend crash adds (its selection DAG, arguments and stack
/// trace): what the user can act on comes before it, e.g. the BPF backend's "Unsupport signed
/// division ... Please convert to unsigned div/mod" at the user's line.
fn without_crash_dump(text: &str) -> String {
    let Some(at) = text.find("fatal error: error in backend:") else {
        return text.to_string();
    };
    let first_line = text[at..].lines().next().unwrap_or_default();
    format!("{}{first_line}\n(clang's code generator stopped there; its crash dump is left out)", &text[..at])
}

#[cfg(test)]
mod tests {
    use super::without_crash_dump;

    #[test]
    fn a_backend_crash_keeps_the_users_line_and_drops_the_dump() {
        let err = "Error at line 4: Unsupport signed division. Please convert to unsigned div/mod.\n\
                   fatal error: error in backend: Cannot select: sdiv\n  0x1: i64 = sra\nStack dump:\n#0 0x7f\n";
        let text = without_crash_dump(err);
        assert!(text.starts_with("Error at line 4: Unsupport signed division"), "{text}");
        assert!(text.contains("fatal error: error in backend: Cannot select: sdiv\n(clang's"), "{text}");
        assert!(!text.contains("Stack dump") && !text.contains("sra"), "{text}");
        assert_eq!(without_crash_dump("x.c:1:1: error: y\n"), "x.c:1:1: error: y\n");
    }
}
