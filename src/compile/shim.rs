//! The include shim: kernel headers a bcc program includes are served by vmlinux.h (always included
//! first), so their `#include` lines are blanked; and the tracepoints the program names, whose
//! argument structs rbcc generates from tracefs.

/// Blank every `#include <...>` line: kernel and bcc headers all resolve to the prelude (vmlinux.h,
/// libbpf's headers, rbcc's). `#include "..."` (the user's own files) stays. Line count is kept.
pub fn shim_includes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let is_angle_include = t
            .strip_prefix('#')
            .map(|r| r.trim_start())
            .and_then(|r| r.strip_prefix("include"))
            .is_some_and(|r| r.trim_start().starts_with('<'));
        if is_angle_include {
            if line.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

fn identifiers(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let c = bytes[i];
            if c.is_ascii_alphabetic() || c == b'_' {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                return Some((start, &text[start..i]));
            }
            i += 1;
        }
        None
    })
}

/// The (category, event) pairs of the tracepoints a program uses: `TRACEPOINT_PROBE(c, e)` and
/// `tracepoint__c__e` names. Sorted and deduplicated.
pub fn tracepoints(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let ids: Vec<(usize, &str)> = identifiers(text).collect();
    for (k, (pos, id)) in ids.iter().enumerate() {
        if *id == "TRACEPOINT_PROBE" {
            if let (Some((p1, cat)), Some((p2, ev))) = (ids.get(k + 1), ids.get(k + 2)) {
                let between =
                    |a: usize, b: usize| text[a..b].chars().filter(|c| !c.is_whitespace()).collect::<String>();
                if between(pos + id.len(), *p1) == "(" && between(p1 + cat.len(), *p2) == "," {
                    out.push((cat.to_string(), ev.to_string()));
                }
            }
        } else if let Some(rest) = id.strip_prefix("tracepoint__") {
            if let Some((cat, ev)) = rest.split_once("__") {
                if !cat.is_empty() && !ev.is_empty() {
                    out.push((cat.to_string(), ev.to_string()));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blanks_angle_includes_only() {
        let src = "#include <linux/sched.h>\n  # include <net/sock.h>\n#include \"mine.h\"\nint x;\n";
        assert_eq!(shim_includes(src), "\n\n#include \"mine.h\"\nint x;\n");
    }

    #[test]
    fn finds_tracepoints() {
        let src = "TRACEPOINT_PROBE(sched, sched_switch) { }\nTRACEPOINT_PROBE( syscalls ,sys_enter_openat)\n\
                   int f(struct tracepoint__block__block_rq_issue *args);";
        assert_eq!(
            tracepoints(src),
            vec![
                ("block".to_string(), "block_rq_issue".to_string()),
                ("sched".to_string(), "sched_switch".to_string()),
                ("syscalls".to_string(), "sys_enter_openat".to_string()),
            ]
        );
    }
}
