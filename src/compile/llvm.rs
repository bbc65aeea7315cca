//! What differs between the LLVM versions rbcc supports (toolchain::SUPPORTED, measured by `make
//! test-toolchains`), in one place: the warnings each version needs silenced or raised so that bcc's
//! dialect compiles alike with all of them, and the formats their BPF backends report errors in.
//! Versions are not tested here by number: a flag an older clang does not know is ignored
//! (`-Wno-unknown-warning-option`), and each backend format is recognised by its shape.

use std::ops::RangeInclusive;

use crate::error::Diagnostic;

/// The LLVM major versions rbcc works with: those `make test-toolchains` passed (README's table), the
/// range less `BROKEN`.
pub const SUPPORTED: RangeInclusive<u32> = 13..=22;

/// Versions inside the range that are refused all the same, and why: the matrix found them failing.
pub const BROKEN: &[(u32, &str)] = &[(
    15,
    "its optimizer crashes (a segfault in InstCombine) on kernel field reads rbcc emits, e.g. \
     TCP_SKB_CB(skb)->seq beside cb->seq",
)];

/// Why LLVM `version` cannot be used, or None when it can.
pub fn refusal(version: u32) -> Option<String> {
    if let Some((_, why)) = BROKEN.iter().find(|(v, _)| *v == version) {
        return Some(format!("LLVM {version} is not supported: {why}"));
    }
    (!SUPPORTED.contains(&version)).then(|| {
        format!("LLVM {version} is not supported (rbcc works with LLVM {}..{})", SUPPORTED.start(), SUPPORTED.end())
    })
}

/// Every supported version, oldest first.
pub fn supported() -> Vec<u32> {
    SUPPORTED.filter(|v| refusal(*v).is_none()).collect()
}

/// Warning flags for the parse, the compile and the PCHs. bcc's programs mix pointer and integer types
/// freely (bcc's own clang only warned); clang 16 made int-conversion an error by default and clang 22
/// incompatible pointer types (an anonymous struct named twice is two types), so both are silenced.
pub const WARNINGS: &[&str] = &[
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
    "-Wno-incompatible-pointer-types",
    // A call to an undeclared function would otherwise reach the loader as an unresolvable
    // extern; say at the user's line that the function does not exist.
    "-Werror=implicit-function-declaration",
];

/// The diagnostics clang printed about the user's file (`name:3:5: error: ...`), and those of its BPF
/// backend, which names only the line (`Error at line 4: Unsupport signed division...`, `fatal error:
/// error in backend: line 9: Invalid usage of the XADD return value`).
pub fn diagnostics_in(text: &str, display_name: &str) -> Vec<Diagnostic> {
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
            // the backend's message may quote the place as `name:4:5`, the column with it; a fatal
            // one (an atomic's unusable result) names only the line, as `error in backend: line 9: ...`
            let backend = l
                .strip_prefix("Error at line ")
                .or_else(|| l.strip_prefix("fatal error: error in backend: line "))
                .and_then(|r| r.split_once(':'));
            backend.and_then(|(line, message)| {
                let column = message.split(&format!("{display_name}:{}:", line.trim())).nth(1);
                let column = column.map(|c| c.chars().take_while(char::is_ascii_digit).collect::<String>());
                at(line, None, "error", message)
                    .map(|d| Diagnostic { column: column.and_then(|c| c.parse().ok()), ..d })
            })
        };
        found.extend(diagnostic);
    }
    backend_repeats_once(found)
}

/// A backend diagnostic once, at its most precise place. LLVM repeats a backend complaint for each place
/// it meets it; up to 16 each repeat names the same place, from 18 the first names only the function
/// (its first line, "could not determine the original source location" in a note) and a later one the
/// statement: keep the last place of each message and drop that note.
fn backend_repeats_once(found: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut kept: Vec<Diagnostic> = Vec::new();
    for d in found {
        if d.message.starts_with("could not determine the original source location") {
            continue;
        }
        match kept.iter_mut().find(|k| k.severity == d.severity && k.message == d.message) {
            Some(k) => *k = d,
            None => kept.push(d),
        }
    }
    kept
}

/// clang's diagnostics without the dump a backend crash adds (its selection DAG, arguments and stack
/// trace): what the user can act on comes before it, e.g. the BPF backend's "Unsupport signed
/// division ... Please convert to unsigned div/mod" at the user's line.
pub fn without_crash_dump(text: &str) -> String {
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

    #[test]
    fn a_fatal_backend_error_at_a_line_is_a_record_there() {
        let text = "fatal error: error in backend: line 9: Invalid usage of the XADD return value\n\
                    fatal error: error in backend: Cannot select: t5: i32 = AtomicLoadOr\n";
        let found = diagnostics_in(&without_crash_dump(text), "<bpf text>");
        let places: Vec<_> = found.iter().map(|d| (d.line, d.column, d.severity.as_str())).collect();
        assert_eq!(places, [(9, None, "error")], "{found:?}");
        assert_eq!(found[0].message, "Invalid usage of the XADD return value");
    }

    #[test]
    fn llvm_18s_repeat_at_the_function_keeps_the_statements_line() {
        let text = "<bpf text>:2:1: error: Looks like the BPF stack limit is exceeded.\n\
                    <bpf text>:2:1: note: could not determine the original source location for <bpf text>:0:0\n\
                    <bpf text>:3:10: error: Looks like the BPF stack limit is exceeded.\n\
                    <bpf text>:4:5: error: unsupported signed division, please convert to unsigned div/mod.\n";
        let found = diagnostics_in(text, "<bpf text>");
        let places: Vec<_> = found.iter().map(|d| (d.line, d.column, d.severity.as_str())).collect();
        assert_eq!(places, [(3, Some(10), "error"), (4, Some(5), "error")], "{found:?}");
    }
}
