//! The clang driver: `-target bpf` compilation of the rewritten C into an ELF object with BTF.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::llvm;
use crate::error::{Error, Result};

/// The clang executable that matches the libclang the parse loads (same LLVM), found once; refused
/// here, before a compile, when the two differ (`toolchain::checked`).
pub fn clang() -> Result<PathBuf> {
    Ok(super::toolchain::checked()?.clang)
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
    flags.extend(llvm::WARNINGS.iter().map(|w| w.to_string()));
    flags
}

/// The clang command for `input` with `flags` and `mode` (its mode flags), writing `output`.
pub fn command(flags: &[String], mode: &[&str], input: &Path, output: &Path) -> Result<Command> {
    let mut cmd = Command::new(clang()?);
    cmd.args(flags)
        .arg("-fno-color-diagnostics")
        // a backend crash would otherwise leave a reproducer (the program and a script) in /tmp
        .arg("-fno-crash-diagnostics")
        .args(mode)
        .arg(input)
        .arg("-o")
        .arg(output);
    Ok(cmd)
}

/// clang's complaint about `source` as the user should read it: at `display_name`, without the crash
/// dump, with a hint where one applies.
pub fn compile_error(stderr: &str, source: &Path, display_name: &str) -> Error {
    let text = llvm::without_crash_dump(&stderr.replace(&source.display().to_string(), display_name));
    let message = super::hints::explain(format!("clang could not compile the program:\n{}", text.trim_end()));
    Error::Compile { message, diagnostics: llvm::diagnostics_in(&text, display_name) }
}
