//! Precompiled preludes. vmlinux.h alone is ~3 MB of C; parsing it dominated every cold compile, twice
//! (the libclang parse and the clang compile). Each prelude is precompiled once per kernel, header set,
//! clang and flag set, so a new program costs only its own text.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::{cache, driver, headers, toolchain, COMPILER_ID};

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

/// The PCH of the prelude for `flags` (which include the stage's own), if it has been built.
///
/// A missing one is built in the background, at low priority, for the compiles that come after: this
/// one reads the plain header, which costs less than waiting for a PCH (~0.5 s). clang writes the PCH
/// under a temporary name and renames it when complete, so a reader never sees half of one, even
/// should this process exit before the build ends.
pub fn prelude_pch(kernel_dir: &Path, include_dir: &Path, flags: &[String]) -> Option<PathBuf> {
    let key = cache::key(&[
        COMPILER_ID.as_bytes(),
        include_dir.as_os_str().as_encoded_bytes(),
        flags.join("\0").as_bytes(),
        toolchain::identity().as_bytes(),
    ]);
    let dir = cache::subdir(kernel_dir, &["pch"]).ok()?;
    let path = dir.join(format!("{}.pch", &key[..32]));
    if path.exists() {
        return Some(path);
    }
    build_in_background(&include_dir.join(PRELUDE), &path, flags);
    None
}

/// How long a build may hold its lock before another process takes it for abandoned.
const BUILD_LOCK_LIFE: Duration = Duration::from_secs(120);

/// Start clang precompiling `header` into `pch`, unless a build of it is already under way.
fn build_in_background(header: &Path, pch: &Path, flags: &[String]) {
    let lock = pch.with_extension("building");
    let take = || fs::OpenOptions::new().write(true).create_new(true).open(&lock).is_ok();
    // abandoned: its builder is gone (the lock holds clang's pid), or it is older than a build can be
    let abandoned = || {
        let builder_gone = fs::read_to_string(&lock)
            .ok()
            .and_then(|pid| pid.trim().parse::<u32>().ok())
            .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        builder_gone
            || fs::metadata(&lock)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > BUILD_LOCK_LIFE)
    };
    let taken = take() || (abandoned() && fs::remove_file(&lock).is_ok() && take());
    if !taken {
        return;
    }
    let Ok(mut cmd) = driver::command(flags, &["-x", "c-header"], header, pch) else {
        let _ = fs::remove_file(&lock);
        return;
    };
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // SAFETY: the closure runs between fork and exec and calls only setpriority and setrlimit, which
    // are async-signal-safe; the build yields the CPU to whatever the user is running.
    unsafe {
        cmd.pre_exec(|| {
            libc::setpriority(libc::PRIO_PROCESS, 0, 19);
            super::isolate::limit_resources();
            Ok(())
        });
    }
    match cmd.spawn() {
        Ok(mut child) => {
            let _ = fs::write(&lock, child.id().to_string());
            let spawned = std::thread::Builder::new().name("rbcc-pch".into()).spawn(move || {
                let _ = child.wait();
                let _ = fs::remove_file(&lock);
            });
            // without a thread to reap it, the build still completes; its lock then expires
            drop(spawned);
        }
        Err(_) => {
            let _ = fs::remove_file(&lock);
        }
    }
}

/// Forget a PCH that clang refused (built by another clang, or its inputs changed underneath it).
pub fn discard(pch: &Path) {
    let _ = fs::remove_file(pch);
}

/// Whether clang's complaint is about the PCH rather than the program.
pub fn is_pch_complaint(message: &str) -> bool {
    ["PCH file", "precompiled header", "AST file"].iter().any(|s| message.contains(s))
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
