//! The user's cflags, checked before they reach clang.
//!
//! cflags are untrusted input handed to a compiler running as root: `-fplugin=`, `-Xclang -load` run
//! a shared object's code, `-MD -MF`, `-save-temps`, `--serialize-diagnostics` write files anywhere,
//! `-include /etc/shadow` reads one into diagnostics. Only flags that shape the program itself pass:
//! macros, include directories, warnings, optimisation, the C standard, a list of harmless `-f`/`-m`
//! flags, and `-include` of a header inside one of the given include directories.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// `-f` flags that only change how the program is compiled (or how diagnostics look).
const HARMLESS_F: &[&str] = &[
    "asynchronous-unwind-tables",
    "builtin",
    "color-diagnostics",
    "common",
    "inline",
    "inline-functions",
    "jump-tables",
    "merge-all-constants",
    "ms-extensions",
    "omit-frame-pointer",
    "short-enums",
    "show-column",
    "signed-char",
    "stack-protector",
    "strict-aliasing",
    "unroll-loops",
    "unsigned-char",
    "wrapv",
    "zero-initialized-in-bss",
    "diagnostics-show-option",
    "caret-diagnostics",
];

/// `-f` flags with a number after `=`.
const NUMERIC_F: &[&str] = &["error-limit", "macro-backtrace-limit", "template-backtrace-limit"];

/// Accept `cflags`, or say which flag is refused and why (a ValueError in Python).
pub fn check(cflags: &[String]) -> Result<()> {
    let refuse = |flag: &str, why: &str| Err(Error::InvalidArgument(format!("cflag {flag:?} is not accepted: {why}")));
    if let Some(f) = cflags.iter().find(|f| f.contains('\0')) {
        return refuse(f, "it holds a NUL byte");
    }
    let include_dirs = include_dirs(cflags);
    let mut flags = cflags.iter();
    while let Some(flag) = flags.next() {
        let f = flag.as_str();
        match f {
            "-D" | "-U" => {
                if flags.next().is_none() {
                    return refuse(f, "a macro name must follow it");
                }
            }
            "-I" | "-iquote" | "-isystem" | "-idirafter" => match flags.next() {
                Some(dir) if Path::new(dir).is_dir() => {}
                Some(dir) => return refuse(dir, "include directories must be existing directories"),
                None => return refuse(f, "a directory must follow it"),
            },
            "-include" => match flags.next() {
                Some(header) if header_in(header, &include_dirs) => {}
                Some(header) => {
                    return refuse(header, "-include takes a header inside one of the -I directories given")
                }
                None => return refuse(f, "a header must follow it"),
            },
            "-w" | "-g" | "-nostdinc" | "-ffreestanding" | "-pedantic" => {}
            _ if f.len() > 2 && (f.starts_with("-D") || f.starts_with("-U")) => {}
            _ if f.starts_with("-I") || f.starts_with("-iquote") || f.starts_with("-isystem") => {
                let dir = ["-I", "-iquote", "-isystem"].iter().find_map(|p| f.strip_prefix(p)).unwrap_or_default();
                if !Path::new(dir).is_dir() {
                    return refuse(f, "include directories must be existing directories");
                }
            }
            // -Wl, -Wa, -Wp pass options to other tools (-Wp,-MD,FILE writes a file)
            _ if f.starts_with("-W") && !f.contains(',') && !f.starts_with("-Wl") => {}
            _ if matches!(f, "-O" | "-O0" | "-O1" | "-O2" | "-O3" | "-Os" | "-Oz") => {}
            _ if f.starts_with("-std=") => {}
            _ if f.starts_with("-gdwarf") || f == "-gno-column-info" || f == "-gcolumn-info" => {}
            _ if f.starts_with("-mcpu=") || f.starts_with("-mattr=") => {}
            _ if harmless_f(f) => {}
            _ => {
                return refuse(f, "it is not a flag that shapes the program (-D, -U, -I, -W, -O, -std, -include, ...)")
            }
        }
    }
    Ok(())
}

fn harmless_f(flag: &str) -> bool {
    let Some(name) = flag.strip_prefix("-f") else {
        return false;
    };
    let name = name.strip_prefix("no-").unwrap_or(name);
    if let Some((name, value)) = name.split_once('=') {
        return NUMERIC_F.contains(&name) && value.parse::<u32>().is_ok();
    }
    HARMLESS_F.contains(&name)
}

fn include_dirs(cflags: &[String]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut flags = cflags.iter();
    while let Some(f) = flags.next() {
        let dir = match f.as_str() {
            "-I" | "-iquote" | "-isystem" | "-idirafter" => flags.next().cloned(),
            f => ["-I", "-iquote", "-isystem"].iter().find_map(|p| f.strip_prefix(p)).map(str::to_string),
        };
        dirs.extend(dir.filter(|d| !d.is_empty()).and_then(|d| std::fs::canonicalize(d).ok()));
    }
    dirs
}

/// Whether `header` (as clang would find it: itself if absolute, else in an include directory) is a
/// regular file inside one of `dirs`, symlinks resolved.
fn header_in(header: &str, dirs: &[PathBuf]) -> bool {
    let candidates: Vec<PathBuf> = if Path::new(header).is_absolute() {
        vec![header.into()]
    } else {
        dirs.iter().map(|d| d.join(header)).collect()
    };
    candidates
        .iter()
        .filter_map(|c| std::fs::canonicalize(c).ok())
        .any(|real| real.is_file() && dirs.iter().any(|d| real.starts_with(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepts_what_shapes_a_program() {
        let tmp = std::env::temp_dir().join(format!("rbcc-cflags-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("mine.h"), "#define X 1\n").unwrap();
        let dir = tmp.display().to_string();
        let ok = flags(&[
            "-DPID=12",
            "-D",
            "FILTER",
            "-UX",
            "-Wall",
            "-Wno-unused-value",
            "-Werror=return-type",
            "-w",
            "-O2",
            "-std=gnu11",
            "-fno-builtin",
            "-funroll-loops",
            "-ferror-limit=5",
            "-mcpu=v3",
            "-g",
        ]);
        check(&ok).unwrap();
        check(&flags(&["-I", &dir, "-include", "mine.h"])).unwrap();
        check(&flags(&[&format!("-I{dir}"), "-include", &format!("{dir}/mine.h")])).unwrap();
        let _ = std::fs::remove_dir_all(&tmp);
    }

    #[test]
    fn refuses_flags_that_run_code_or_touch_other_files() {
        let tmp = std::env::temp_dir().join(format!("rbcc-cflags-r-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let dir = tmp.display().to_string();
        for bad in [
            vec!["-fplugin=/tmp/evil.so"],
            vec!["-Xclang", "-load"],
            vec!["-MD", "-MF", "/tmp/x"],
            vec!["--serialize-diagnostics", "/tmp/x"],
            vec!["-save-temps"],
            vec!["-Wp,-MD,/tmp/x"],
            vec!["-Wl,-z"],
            vec!["-include", "/etc/shadow"],
            vec!["-I", &dir, "-include", "/etc/passwd"],
            vec!["-I", &dir, "-include", "../../etc/passwd"],
            vec!["-I/nonexistent-rbcc-dir"],
            vec!["-o", "/tmp/x"],
            vec!["-fprofile-generate"],
            vec!["-ferror-limit=x"],
            vec!["-DX\0Y"],
            vec!["-D"],
        ] {
            let err = check(&flags(&bad)).unwrap_err();
            assert!(matches!(err, Error::InvalidArgument(ref m) if m.contains("is not accepted")), "{bad:?}: {err}");
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
