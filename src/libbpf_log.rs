//! What libbpf prints, captured around one call so that errors can quote it: the verifier's log of a
//! rejected program, libbpf's own lines saying why a load or an attach failed. Loading, attaching and
//! the network attachments all use it; it depends on none of them.

use std::cell::Cell;
use std::sync::{Mutex, MutexGuard, Once};

static LIBBPF_LOG: Mutex<Option<String>> = Mutex::new(None);
static INSTALL_PRINT: Once = Once::new();
/// Held through a capture: libbpf prints through one global callback, so two threads loading at once
/// (the GIL is released around loads and attaches) would read each other's lines.
static CAPTURING: Mutex<()> = Mutex::new(());

thread_local! {
    /// Whether this thread is inside a capture already (it holds CAPTURING).
    static NESTED: Cell<bool> = const { Cell::new(false) };
}

fn libbpf_print(level: libbpf_rs::PrintLevel, msg: String) {
    let mut log = LIBBPF_LOG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(buf) = log.as_mut() {
        buf.push_str(&msg);
    } else if level == libbpf_rs::PrintLevel::Warn && std::env::var_os("RBCC_DEBUG").is_some() {
        eprint!("libbpf: {msg}");
    }
}

/// Run `f` while collecting what libbpf prints; return its result and the text. One thread captures
/// at a time; a capture inside another on the same thread gets the text printed during it.
pub fn with_libbpf_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    INSTALL_PRINT.call_once(|| {
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, libbpf_print)));
    });
    let log = || LIBBPF_LOG.lock().unwrap_or_else(|e| e.into_inner());
    if NESTED.get() {
        let from = log().as_ref().map_or(0, String::len);
        let out = f();
        let text = log().as_ref().map(|t| t.get(from..).unwrap_or_default().to_string()).unwrap_or_default();
        return (out, text);
    }
    let _capture = Capture::begin();
    *log() = Some(String::new());
    let out = f();
    let text = log().take().unwrap_or_default();
    (out, text)
}

/// This thread's turn to capture, until dropped (a panic in the captured call ends it too).
struct Capture(#[allow(dead_code)] MutexGuard<'static, ()>);

impl Capture {
    fn begin() -> Capture {
        // the lock guards no data of its own: one poisoned by a panic elsewhere is as good as a free one
        let turn = CAPTURING.lock().unwrap_or_else(|e| e.into_inner());
        NESTED.set(true);
        Capture(turn)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        NESTED.set(false);
    }
}

/// The verifier's part of libbpf's output, if the failure was a verifier rejection: libbpf's line
/// naming the program that failed, and the verifier's log.
pub fn verifier_log(libbpf_output: &str) -> Option<(String, String)> {
    // the last log: with a log level asked for, the programs loaded before the one that failed log too
    let begin = libbpf_output.rfind("-- BEGIN PROG LOAD LOG --")?;
    let end = libbpf_output[begin..].find("-- END PROG LOAD LOG --").map(|e| begin + e).unwrap_or(libbpf_output.len());
    let body = &libbpf_output[begin + "-- BEGIN PROG LOAD LOG --".len()..end];
    let prog = libbpf_output[..begin].lines().rev().find(|l| l.contains("prog '")).unwrap_or("").trim();
    Some((prog.to_string(), body.trim_matches('\n').to_string()))
}

/// The verifier's logs of the programs a load loaded, as (program, log), when a log level was asked
/// for: libbpf prints them (as debug output) only then.
pub fn load_logs(libbpf_output: &str) -> Vec<(String, String)> {
    const BEGIN: &str = ": -- BEGIN PROG LOAD LOG --\n";
    let mut logs = Vec::new();
    let mut rest = libbpf_output;
    while let Some(at) = rest.find(BEGIN) {
        let line_start = rest[..at].rfind('\n').map_or(0, |n| n + 1);
        let prog = rest[line_start..at].rsplit("prog '").next().unwrap_or("").trim_end_matches('\'');
        let body = &rest[at + BEGIN.len()..];
        let end = body.find("-- END PROG LOAD LOG --").unwrap_or(body.len());
        logs.push((prog.to_string(), body[..end].trim_end_matches('\n').to_string()));
        rest = &body[end..];
    }
    logs
}

/// What usually causes the rejection a verifier log ends with, for the few causes a log alone leaves
/// obscure to someone new to BPF (bcc prints such hints too).
pub fn hints(verifier_log: &str) -> Vec<&'static str> {
    let mut hints = Vec::new();
    if verifier_log.contains("_or_null'") {
        hints.push(
            "a pointer that may be NULL (a map lookup's result) was dereferenced: check it against NULL \
             first (`if (!v) return 0;`)",
        );
    }
    if verifier_log.contains("invalid stack off=") || verifier_log.contains("combined stack size") {
        hints.push(
            "the program needs more than the 512 bytes of stack BPF has: keep large structs in a \
             per-CPU array map (a BPF_PERCPU_ARRAY of one entry) instead of local variables",
        );
    }
    if verifier_log.contains("unknown func") || verifier_log.contains("invalid func") {
        hints.push("this kernel does not offer that helper to this program type (or at all)");
    }
    hints
}

/// The instruction the verifier stopped at: the last one its log prints (`12: (79) r0 = *(u64 *)(r0 +0)`)
/// before it says why, or None when it stopped before any (a license or BTF problem).
pub fn failing_insn(verifier_log: &str) -> Option<u32> {
    verifier_log.lines().rev().find_map(|line| {
        let (index, rest) = line.split_once(": (")?;
        let opcode = rest.get(..3)?;
        let is_opcode = opcode.ends_with(')') && opcode[..2].chars().all(|c| c.is_ascii_hexdigit());
        if is_opcode {
            index.parse().ok()
        } else {
            None
        }
    })
}

/// libbpf's lines that say why something failed.
pub fn warnings_and_errors(libbpf_output: &str) -> String {
    libbpf_output
        .lines()
        .filter(|l| {
            l.starts_with("libbpf:")
                && ["failed", "error", "invalid", "not found", "not resolved"].iter().any(|w| l.contains(w))
        })
        // libbpf reports its optional steps (BPF token, feature probes) failing without privileges too
        .filter(|l| !l.contains("skipping optional step"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = "libbpf: prog 'tracepoint__x': BPF program load failed: Permission denied
libbpf: prog 'tracepoint__x': -- BEGIN PROG LOAD LOG --
0: R1=ctx() R10=fp0
; u32 k = 0; @ main.c:5
0: (b7) r1 = 0                        ; R1_w=0
1: (63) *(u32 *)(r10 -4) = r1
from 1 to 3: R0=map_value_or_null(id=1)
3: (15) if r0 == 0x0 goto pc+1
; return *v; @ main.c:6
12: (79) r0 = *(u64 *)(r0 +0)
R0 invalid mem access 'map_value_or_null'
processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
-- END PROG LOAD LOG --
libbpf: prog 'tracepoint__x': failed to load: -13
";

    #[test]
    fn the_logs_of_programs_loaded_with_a_log_level() {
        let output = "libbpf: prog 'a': -- BEGIN PROG LOAD LOG --\nfunc#0 @0\nprocessed 2 insns\n-- END PROG LOAD \
                      LOG --\nlibbpf: map 'x': created\nlibbpf: prog 'b_2': -- BEGIN PROG LOAD LOG --\n0: (b7) r0 = \
                      0\n-- END PROG LOAD LOG --\n";
        let logs = load_logs(output);
        assert_eq!(
            logs,
            vec![
                ("a".to_string(), "func#0 @0\nprocessed 2 insns".to_string()),
                ("b_2".to_string(), "0: (b7) r0 = 0".to_string())
            ]
        );
        // a failure after them: its log is the last one
        let failed = format!("{output}{OUTPUT}");
        assert!(verifier_log(&failed).unwrap().1.contains("map_value_or_null"));
    }

    #[test]
    fn hints_for_the_usual_causes() {
        assert_eq!(hints("R0 invalid mem access 'map_value_or_null'").len(), 1);
        assert!(hints("processed 3 insns").is_empty());
    }

    #[test]
    fn a_capture_inside_another_gets_its_own_lines_and_the_outer_keeps_all() {
        let say = |text: &str| libbpf_print(libbpf_rs::PrintLevel::Info, text.to_string());
        let ((_, inner), outer) = with_libbpf_log(|| {
            say("libbpf: outer\n");
            with_libbpf_log(|| say("libbpf: inner\n"))
        });
        assert_eq!(inner, "libbpf: inner\n");
        assert_eq!(outer, "libbpf: outer\nlibbpf: inner\n");
    }

    #[test]
    fn the_verifier_log_and_the_instruction_it_stopped_at() {
        let (prog, log) = verifier_log(OUTPUT).unwrap();
        assert_eq!(prog, "libbpf: prog 'tracepoint__x':");
        assert!(log.starts_with("0: R1=ctx()") && log.ends_with("mark_read 0"), "{log}");
        assert_eq!(failing_insn(&log), Some(12));
        assert_eq!(failing_insn("cannot call GPL-restricted function from non-GPL compatible program"), None);
        assert_eq!(verifier_log("libbpf: failed to find BTF"), None);
    }
}
