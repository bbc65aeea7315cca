//! What libbpf C each bcc declaration becomes: a probe function's ELF section, a map's definition.

use std::fmt::Write as _;

/// The ELF section that gives a function its program type.
pub fn section_for(name: &str, ctx_type: &str) -> String {
    if let Some(f) = name.strip_prefix("kprobe__") {
        return format!("kprobe/{f}");
    }
    if let Some(f) = name.strip_prefix("kretprobe__") {
        return format!("kretprobe/{f}");
    }
    if let Some(rest) = name.strip_prefix("tracepoint__") {
        if let Some((cat, ev)) = rest.split_once("__") {
            return format!("tracepoint/{cat}/{ev}");
        }
    }
    if let Some(f) = name.strip_prefix("kfunc__") {
        return format!("fentry/{f}");
    }
    if let Some(f) = name.strip_prefix("kretfunc__") {
        return format!("fexit/{f}");
    }
    if let Some(hook) = name.strip_prefix("lsm__") {
        return format!("lsm/{hook}");
    }
    if let Some(tp) = name.strip_prefix("raw_tracepoint__") {
        return format!("raw_tp/{tp}");
    }
    let ctx = ctx_type.trim_start_matches("const ").trim();
    match ctx {
        "struct bpf_perf_event_data" => "perf_event",
        "struct bpf_raw_tracepoint_args" => "raw_tp",
        "struct __sk_buff" => "socket",
        "struct xdp_md" => "xdp",
        t if t.starts_with("struct tracepoint__") => "tracepoint",
        _ => "kprobe",
    }
    .to_string()
}

/// The libbpf map definition (an anonymous struct type) for a bcc map kind.
pub fn map_definition(kind: &str, key: &str, leaf: &str, size: i64, flags: i64) -> Option<String> {
    let typed = |t: &str| {
        let mut s = format!(
            "struct {{ __uint(type, {t}); __uint(max_entries, {size}); __type(key, {key}); __type(value, {leaf});"
        );
        if flags > 0 {
            let _ = write!(s, " __uint(map_flags, {flags});");
        }
        s.push_str(" }");
        s
    };
    Some(match kind {
        "hash" => typed("BPF_MAP_TYPE_HASH"),
        "array" => typed("BPF_MAP_TYPE_ARRAY"),
        // bcc's rule: an array when the key is `int` (slots 0..size), otherwise a hash (struct keys
        // such as {name, slot} for per-section histograms, or unsigned keys of any value).
        "histogram" if key.trim() == "int" => typed("BPF_MAP_TYPE_ARRAY"),
        "histogram" => typed("BPF_MAP_TYPE_HASH"),
        "percpu_hash" => typed("BPF_MAP_TYPE_PERCPU_HASH"),
        "percpu_array" => typed("BPF_MAP_TYPE_PERCPU_ARRAY"),
        "lru_hash" => typed("BPF_MAP_TYPE_LRU_HASH"),
        "lru_percpu_hash" => typed("BPF_MAP_TYPE_LRU_PERCPU_HASH"),
        "perf_output" => {
            "struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, sizeof(int)); __uint(value_size, sizeof(__u32)); }".to_string()
        }
        "ringbuf" => format!("struct {{ __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, {} * 4096); }}", size.max(1)),
        "stacktrace" => format!(
            "struct {{ __uint(type, BPF_MAP_TYPE_STACK_TRACE); __uint(max_entries, {size}); __uint(key_size, sizeof(__u32)); __uint(value_size, PERF_MAX_STACK_DEPTH * sizeof(__u64)); }}"
        ),
        _ => return None,
    })
}
