//! Precompiled preludes. vmlinux.h alone is ~3 MB of C; parsing it dominated every cold compile, twice
//! (the libclang parse and the clang compile). Each prelude is precompiled once per kernel, header set,
//! clang and flag set, so a new program costs only its own text.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{cache, driver, headers, COMPILER_ID};

/// The prelude every program is compiled after.
pub const PRELUDE: &str = "rbcc/prelude.h";

/// What the prelude is compiled for. A PCH is only valid with the flags it was built with, so the
/// libclang parse (bcc dialect) and the clang compile (`-O2 -g`) each get their own.
#[derive(Clone, Copy)]
pub enum Stage {
    Parse,
    Compile,
}

impl Stage {
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Stage::Parse => &["-D__RBCC_PARSE__"],
            Stage::Compile => &["-O2", "-g"],
        }
    }
}

/// The flags that put the prelude in front of a program: `-include-pch` when a PCH can be had,
/// otherwise the plain `-include` (slower, same result).
pub fn prelude_flags(pch: Option<&Path>) -> Vec<String> {
    match pch {
        Some(p) => vec!["-include-pch".into(), p.display().to_string()],
        None => vec!["-include".into(), PRELUDE.into()],
    }
}

/// Split the user's cflags into those the prelude's PCH must be built with and those that can be
/// given to each compile alone. A `-D`/`-U` of a macro no prelude header mentions cannot change the
/// prelude, so programs that differ only in such defines (`-DTARGET_PID=1234`) share one PCH.
pub fn split_user_flags(cflags: &[String]) -> (Vec<String>, Vec<String>) {
    let (mut shared, mut own) = (Vec::new(), Vec::new());
    let mut flags = cflags.iter();
    while let Some(flag) = flags.next() {
        let mut group = vec![flag.clone()];
        let macro_def = match flag.as_str() {
            "-D" | "-U" => flags.next().map(|value| {
                group.push(value.clone());
                value.as_str()
            }),
            f if f.len() > 2 && (f.starts_with("-D") || f.starts_with("-U")) => Some(&f[2..]),
            _ => None,
        };
        let neutral = macro_def.is_some_and(|d| !prelude_mentions(d.split('=').next().unwrap_or(d)));
        if neutral {
            own.extend(group)
        } else {
            shared.extend(group)
        }
    }
    (shared, own)
}

/// Whether `name` appears as an identifier in any header the prelude pulls in (vmlinux.h's only macros
/// are its guard and BPF_NO_PRESERVE_ACCESS_INDEX; kconfig.h defines CONFIG_*).
fn prelude_mentions(name: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if name.is_empty()
        || name.starts_with("__VMLINUX")
        || name.starts_with("CONFIG_")
        || name == "BPF_NO_PRESERVE_ACCESS_INDEX"
    {
        return true;
    }
    headers::HEADERS.iter().any(|(_, text)| {
        text.match_indices(name).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + name.len()..].chars().next();
            !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
        })
    })
}

/// The PCH of the prelude for `flags` (which include the stage's own), built on first use.
///
/// A build failure is not an error: the caller falls back to the plain header.
pub fn prelude_pch(kernel_dir: &Path, include_dir: &Path, flags: &[String]) -> Option<PathBuf> {
    let clang = driver::clang().ok()?;
    let key = cache::key(&[
        COMPILER_ID.as_bytes(),
        include_dir.as_os_str().as_encoded_bytes(),
        flags.join("\0").as_bytes(),
        clang_identity(&clang).as_bytes(),
    ]);
    let dir = cache::subdir(kernel_dir, &["pch"]).ok()?;
    let path = dir.join(format!("{}.pch", &key[..32]));
    if path.exists() {
        return Some(path);
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let built = driver::precompile(&include_dir.join(PRELUDE), &tmp, flags);
    if built.is_err() || fs::rename(&tmp, &path).is_err() {
        let _ = fs::remove_file(&tmp);
        return None;
    }
    Some(path)
}

/// Forget a PCH that clang refused (built by another clang, or its inputs changed underneath it).
pub fn discard(pch: &Path) {
    let _ = fs::remove_file(pch);
}

/// Whether clang's complaint is about the PCH rather than the program.
pub fn is_pch_complaint(message: &str) -> bool {
    ["PCH file", "precompiled header", "AST file"].iter().any(|s| message.contains(s))
}

/// A PCH is tied to the exact clang that wrote it: an upgrade changes the binary's size or mtime.
fn clang_identity(clang: &Path) -> String {
    let real = fs::canonicalize(clang).unwrap_or_else(|_| clang.to_path_buf());
    match fs::metadata(&real) {
        Ok(m) => format!("{}\0{}\0{}", real.display(), m.len(), m.mtime()),
        Err(_) => real.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_pch_complaints() {
        assert!(is_pch_complaint("fatal error: PCH file 'x.pch' not found"));
        assert!(is_pch_complaint("file 'vmlinux.h' has been modified since the precompiled header was built"));
        assert!(!is_pch_complaint("main.c:3:5: error: use of undeclared identifier 'x'"));
    }

    #[test]
    fn only_defines_the_prelude_never_reads_stay_out_of_the_pch() {
        let flags: Vec<String> =
            ["-DTARGET_PID=12", "-D", "FILTER", "-DBPF_NO_PRESERVE_ACCESS_INDEX", "-U", "bpf_printk", "-Ifoo", "-w"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let (shared, own) = split_user_flags(&flags);
        assert_eq!(own, ["-DTARGET_PID=12", "-D", "FILTER"]);
        assert_eq!(shared, ["-DBPF_NO_PRESERVE_ACCESS_INDEX", "-U", "bpf_printk", "-Ifoo", "-w"]);
    }
}
