//! The program's own headers (`#include "x.h"`), found as clang finds them, so that their text is part
//! of the object's cache key: editing a header recompiles every program that includes it.
//!
//! Found generously rather than exactly: an include inside an `#if` that is off still counts (a
//! needless recompile at worst, never a stale object). Only regular files are read; an include of a
//! device or FIFO is refused here, before clang would read `/dev/zero` until it runs out of memory.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Diagnostic, Error, Result};

/// How deep includes nest, and how many files are followed, before the search stops.
const MAX_DEPTH: usize = 32;
const MAX_FILES: usize = 512;

/// Every user header reachable from `text` (the program in `filename`), in a stable order: (path,
/// contents). An include of a device, FIFO or socket is an error: clang would read it forever
/// (`/dev/zero`) or wait on it.
pub fn user_headers(text: &str, cflags: &[String], filename: &str) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let dirs = search_dirs(cflags);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut pending: Vec<(Option<PathBuf>, usize, String, usize)> =
        quoted_includes(text).into_iter().map(|(line, name)| (None, line, name, 0)).collect();
    while let Some((from, line, name, depth)) = pending.pop() {
        if depth >= MAX_DEPTH || out.len() >= MAX_FILES {
            break;
        }
        if let Some(special) = special_file(&name, from.as_deref(), &dirs) {
            let what = format!(
                "#include \"{name}\": {} is not a regular file (a device, FIFO or socket cannot be a header)",
                special.display()
            );
            let Some(dir) = &from else {
                let diagnostic = Diagnostic {
                    file: filename.into(),
                    line: line as u32,
                    column: None,
                    severity: "error".into(),
                    message: what.clone(),
                };
                return Err(Error::Compile { message: format!("line {line}: {what}"), diagnostics: vec![diagnostic] });
            };
            return Err(Error::compile(format!("a header in {}, line {line}: {what}", dir.display())));
        }
        let Some(path) = resolve(&name, from.as_deref(), &dirs) else { continue };
        if !seen.insert(path.clone()) {
            continue;
        }
        let Ok(bytes) = fs::read(&path) else { continue };
        let nested = quoted_includes(&String::from_utf8_lossy(&bytes));
        let dir = path.parent().map(Path::to_path_buf);
        pending.extend(nested.into_iter().map(|(line, n)| (dir.clone(), line, n, depth + 1)));
        out.push((path, bytes));
    }
    out.sort();
    Ok(out)
}

/// The names in `#include "name"` lines, with their line numbers.
fn quoted_includes(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let rest = l.trim_start().strip_prefix('#')?.trim_start().strip_prefix("include")?.trim_start();
            let rest = rest.strip_prefix('"')?;
            Some((i + 1, rest[..rest.find('"')?].to_string()))
        })
        .collect()
}

/// `-iquote` directories, then `-I` ones, as clang searches them for quoted includes.
fn search_dirs(cflags: &[String]) -> Vec<PathBuf> {
    let (mut quote, mut plain) = (Vec::new(), Vec::new());
    let mut flags = cflags.iter();
    while let Some(flag) = flags.next() {
        let (list, value) = if flag == "-iquote" {
            (&mut quote, flags.next().cloned())
        } else if let Some(v) = flag.strip_prefix("-iquote") {
            (&mut quote, Some(v.to_string()))
        } else if flag == "-I" {
            (&mut plain, flags.next().cloned())
        } else if let Some(v) = flag.strip_prefix("-I") {
            (&mut plain, Some(v.to_string()))
        } else {
            continue;
        };
        list.extend(value.map(PathBuf::from));
    }
    quote.extend(plain);
    quote
}

/// The candidates for `name`, in clang's order: absolute, or beside the including header, or in a
/// search directory.
fn candidates(name: &str, from: Option<&Path>, dirs: &[PathBuf]) -> Vec<PathBuf> {
    let path = Path::new(name);
    if path.is_absolute() {
        return vec![path.to_path_buf()];
    }
    from.into_iter().chain(dirs.iter().map(PathBuf::as_path)).map(|d| d.join(path)).collect()
}

/// The first existing candidate for `name`, when it is neither a regular file nor a directory.
fn special_file(name: &str, from: Option<&Path>, dirs: &[PathBuf]) -> Option<PathBuf> {
    let first = candidates(name, from, dirs).into_iter().find(|p| fs::metadata(p).is_ok())?;
    let kind = fs::metadata(&first).ok()?.file_type();
    (!kind.is_file() && !kind.is_dir()).then_some(first)
}

/// The regular file `name` names: absolute, or beside the including header, or in a search directory.
fn resolve(name: &str, from: Option<&Path>, dirs: &[PathBuf]) -> Option<PathBuf> {
    candidates(name, from, dirs).into_iter().find(|p| fs::metadata(p).is_ok_and(|m| m.is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_quoted_includes_through_search_dirs_and_nesting() {
        let tmp = std::env::temp_dir().join(format!("rbcc-uh-{}", std::process::id()));
        let (inc, quote) = (tmp.join("inc"), tmp.join("quote"));
        fs::create_dir_all(inc.join("sub")).unwrap();
        fs::create_dir_all(&quote).unwrap();
        fs::write(inc.join("a.h"), "#include \"sub/b.h\"\n#define A 1\n").unwrap();
        fs::write(inc.join("sub/b.h"), "  #  include \"c.h\"\n#include <linux/sched.h>\n").unwrap();
        fs::write(inc.join("sub/c.h"), "#include \"a.h\"\n").unwrap(); // a cycle, through -I
        fs::write(quote.join("a.h"), "// the -iquote one wins\n").unwrap();
        let flags = vec![format!("-I{}", inc.display()), "-DX".into()];
        let names: Vec<_> = user_headers("#include \"a.h\"\n#include \"missing.h\"\nint x;", &flags, "p.c")
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.strip_prefix(&tmp).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["inc/a.h", "inc/sub/b.h", "inc/sub/c.h"]);
        let flags = vec!["-iquote".into(), quote.display().to_string(), "-I".into(), inc.display().to_string()];
        let found = user_headers("#include \"a.h\"\n", &flags, "p.c").unwrap();
        assert_eq!(found, vec![(quote.join("a.h"), b"// the -iquote one wins\n".to_vec())]);
        let _ = fs::remove_dir_all(&tmp);
    }

    #[test]
    fn refuses_devices_and_skips_directories() {
        let err = user_headers("int x;\n#include \"/dev/zero\"\n", &[], "p.c").unwrap_err();
        assert!(
            err.to_string().starts_with("line 2: #include \"/dev/zero\": /dev/zero is not a regular file"),
            "{err}"
        );
        let flags = vec!["-I/dev".to_string()];
        assert!(user_headers("#include \"null\"\n", &flags, "p.c").is_err());
        assert!(user_headers("#include \"/proc\"\n", &[], "p.c").unwrap().is_empty());
    }
}
