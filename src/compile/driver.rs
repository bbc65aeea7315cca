//! The clang driver: `-target bpf` compilation of the rewritten C into an ELF object with BTF.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Diagnostic, Error, Result};

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
    let text = without_crash_dump(&stderr.replace(&source.display().to_string(), display_name));
    let message = super::hints::explain(format!("clang could not compile the program:\n{}", text.trim_end()));
    Error::Compile { message, diagnostics: diagnostics_in(&text, display_name) }
}

/// The diagnostics clang printed about the user's file (`name:3:5: error: ...`), and those of its BPF
/// backend, which names only the line (`Error at line 4: Unsupport signed division...`).
fn diagnostics_in(text: &str, display_name: &str) -> Vec<Diagnostic> {
    let at = |line: &str, column: Option<&str>, severity: &str, message: &str| {
        Some(Diagnostic {
            file: display_name.to_string(),
            line: line.trim().parse().ok()?,
            column: match column {
                Some(c) => Some(c.trim().parse().ok()?),
                None => None,
            },
            severity: severity.to_string(),
            message: message.trim().to_string(),
        })
    };
    let mut found: Vec<Diagnostic> = Vec::new();
    for l in text.lines() {
        let diagnostic = if let Some(rest) = l.strip_prefix(display_name).and_then(|r| r.strip_prefix(':')) {
            let mut parts = rest.splitn(4, ':');
            let (line, column, severity, message) = (parts.next(), parts.next(), parts.next(), parts.next());
            line.zip(column).zip(severity.zip(message)).and_then(|((l, c), (s, m))| at(l, Some(c), s.trim(), m))
        } else {
            // the backend's message may quote the place as `name:4:5`, the column with it
            let backend = l.strip_prefix("Error at line ").and_then(|r| r.split_once(':'));
            backend.and_then(|(line, message)| {
                let column = message.split(&format!("{display_name}:{}:", line.trim())).nth(1);
                let column = column.map(|c| c.chars().take_while(char::is_ascii_digit).collect::<String>());
                at(line, None, "error", message)
                    .map(|d| Diagnostic { column: column.and_then(|c| c.parse().ok()), ..d })
            })
        };
        // clang repeats a backend diagnostic for each place it meets it: once each is enough here
        if let Some(d) = diagnostic.filter(|d| !found.contains(d)) {
            found.push(d);
        }
    }
    found
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
    use super::{diagnostics_in, without_crash_dump};

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

    #[test]
    fn diagnostics_at_the_users_file_become_records() {
        let text = "<bpf text>:3:10: error: looks like the BPF stack limit is exceeded\n\
                    /cache/include/x.h:1:2: warning: not ours\n\
                    <bpf text>:3:10: error: looks like the BPF stack limit is exceeded\n\
                    Error at line 4: Unsupport signed division for DAG: i64 = sdiv t1, <bpf text>:4:5Please convert.\n";
        let found = diagnostics_in(text, "<bpf text>");
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].line, found[0].column, found[0].severity.as_str()), (3, Some(10), "error"));
        assert_eq!(found[0].message, "looks like the BPF stack limit is exceeded");
        assert_eq!((found[1].line, found[1].column), (4, Some(5)));
        assert!(found[1].message.starts_with("Unsupport signed division"));
    }
}
