//! What libbpf prints, captured around one call so that errors can quote it: the verifier's log of a
//! rejected program, libbpf's own lines saying why a load or an attach failed. Loading, attaching and
//! the network attachments all use it; it depends on none of them.

use std::sync::{Mutex, Once};

static LIBBPF_LOG: Mutex<Option<String>> = Mutex::new(None);
static INSTALL_PRINT: Once = Once::new();

fn libbpf_print(level: libbpf_rs::PrintLevel, msg: String) {
    let mut log = LIBBPF_LOG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(buf) = log.as_mut() {
        buf.push_str(&msg);
    } else if level == libbpf_rs::PrintLevel::Warn && std::env::var_os("RBCC_DEBUG").is_some() {
        eprint!("libbpf: {msg}");
    }
}

/// Run `f` while collecting what libbpf prints; return its result and the text.
pub fn with_libbpf_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    INSTALL_PRINT.call_once(|| {
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Debug, libbpf_print)));
    });
    *LIBBPF_LOG.lock().unwrap_or_else(|e| e.into_inner()) = Some(String::new());
    let out = f();
    let text = LIBBPF_LOG.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
    (out, text)
}

/// The verifier's part of libbpf's output, if the failure was a verifier rejection.
pub fn verifier_log(libbpf_output: &str) -> Option<String> {
    let begin = libbpf_output.find("-- BEGIN PROG LOAD LOG --")?;
    let end = libbpf_output[begin..].find("-- END PROG LOAD LOG --").map(|e| begin + e).unwrap_or(libbpf_output.len());
    let body = &libbpf_output[begin + "-- BEGIN PROG LOAD LOG --".len()..end];
    // Name the program too: libbpf's line before the log says which one failed.
    let prog = libbpf_output[..begin].lines().rev().find(|l| l.contains("prog '")).unwrap_or("").trim();
    Some(format!("{prog}\n{}", body.trim_matches('\n')))
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
