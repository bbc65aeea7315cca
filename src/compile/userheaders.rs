//! The program's own headers (`#include "x.h"`), found as clang finds them, so that their text is part
//! of the object's cache key: editing a header recompiles every program that includes it.
//!
//! Found generously rather than exactly: an include inside an `#if` that is off still counts (a
//! needless recompile at worst, never a stale object). Only regular files are read, so an include of
//! a device or FIFO cannot hang the key; such a file reaches clang, which reports it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// How deep includes nest, and how many files are followed, before the search stops.
const MAX_DEPTH: usize = 32;
const MAX_FILES: usize = 512;

/// Every user header reachable from `text`, in a stable order: (path, contents).
pub fn user_headers(text: &str, cflags: &[String]) -> Vec<(PathBuf, Vec<u8>)> {
    let dirs = search_dirs(cflags);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut pending: Vec<(Option<PathBuf>, String, usize)> =
        quoted_includes(text).into_iter().map(|name| (None, name, 0)).collect();
    while let Some((from, name, depth)) = pending.pop() {
        if depth >= MAX_DEPTH || out.len() >= MAX_FILES {
            break;
        }
        let Some(path) = resolve(&name, from.as_deref(), &dirs) else { continue };
        if !seen.insert(path.clone()) {
            continue;
        }
        let Ok(bytes) = fs::read(&path) else { continue };
        let nested = quoted_includes(&String::from_utf8_lossy(&bytes));
        let dir = path.parent().map(Path::to_path_buf);
        pending.extend(nested.into_iter().map(|n| (dir.clone(), n, depth + 1)));
        out.push((path, bytes));
    }
    out.sort();
    out
}

/// The names in `#include "name"` lines.
fn quoted_includes(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix('#')?.trim_start().strip_prefix("include")?.trim_start();
            let rest = rest.strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_string())
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

/// The regular file `name` names: absolute, or beside the including header, or in a search directory.
fn resolve(name: &str, from: Option<&Path>, dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = Path::new(name);
    let candidates: Vec<PathBuf> = if path.is_absolute() {
        vec![path.to_path_buf()]
    } else {
        from.into_iter().chain(dirs.iter().map(PathBuf::as_path)).map(|d| d.join(path)).collect()
    };
    candidates.into_iter().find(|p| fs::metadata(p).is_ok_and(|m| m.is_file()))
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
        let names: Vec<_> = user_headers("#include \"a.h\"\n#include \"missing.h\"\nint x;", &flags)
            .into_iter()
            .map(|(p, _)| p.strip_prefix(&tmp).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["inc/a.h", "inc/sub/b.h", "inc/sub/c.h"]);
        let flags = vec!["-iquote".into(), quote.display().to_string(), "-I".into(), inc.display().to_string()];
        let found = user_headers("#include \"a.h\"\n", &flags);
        assert_eq!(found, vec![(quote.join("a.h"), b"// the -iquote one wins\n".to_vec())]);
        let _ = fs::remove_dir_all(&tmp);
    }

    #[test]
    fn reads_only_regular_files() {
        assert!(user_headers("#include \"/dev/zero\"\n#include \"/proc\"\n", &[]).is_empty());
    }
}
