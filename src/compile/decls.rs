//! What libbpf C each bcc declaration becomes: a probe function's ELF section, a map's definition;
//! and the methods bcc's maps have.

/// The map methods of bcc's dialect; helpers.h declares them for the parse and implements each as
/// `__rbcc_m_<method>(&map, ...)`.
pub const METHODS: &[&str] = &[
    "lookup",
    "lookup_or_init",
    "lookup_or_try_init",
    "update",
    "insert",
    "delete",
    "increment",
    "atomic_increment",
    "get_stackid",
    "perf_submit",
    "perf_submit_skb",
    "ringbuf_output",
    "ringbuf_reserve",
    "ringbuf_submit",
    "ringbuf_discard",
    "ringbuf_query",
    "perf_read",
    "perf_counter_value",
    "call",
    "push",
    "pop",
    "peek",
    "redirect_map",
    "check_current_task",
    "get_local_storage",
    "sock_map_update",
    "sock_hash_update",
    "msg_redirect_map",
    "sk_redirect_map",
    "msg_redirect_hash",
    "sk_redirect_hash",
    "sk_storage_get",
    "sk_storage_delete",
    "inode_storage_get",
    "inode_storage_delete",
    "task_storage_get",
    "task_storage_delete",
];

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
        "struct sk_msg_md" => "sk_msg",
        "struct bpf_sock_ops" => "sockops",
        t if t.starts_with("struct tracepoint__") => "tracepoint",
        _ => "kprobe",
    }
    .to_string()
}

/// A bcc map declaration as libbpf C, and what the loader must do with the map besides creating it.
#[derive(Debug, PartialEq, Eq)]
pub struct MapDecl {
    /// The anonymous struct type of the map's BTF definition.
    pub definition: String,
    /// Pin the map at this bpffs path, or reuse the map pinned there (`BPF_TABLE_PINNED`).
    pub pin: Option<String>,
    /// Later programs of this process may use the map as `"extern"` (`BPF_TABLE_PUBLIC`/`_SHARED`).
    pub export: bool,
    /// The map is another program's export (`BPF_TABLE("extern", ...)`).
    pub external: bool,
}

/// The libbpf map for a bcc map kind: `[export/]type[$inner map][:pin path]`, as bcc's macros spell it.
pub fn map_definition(kind: &str, key: &str, leaf: &str, size: i64, flags: i64) -> Result<MapDecl, String> {
    let (kind, export) = match kind.strip_prefix("export/") {
        Some(k) => (k, true),
        None => (kind, false),
    };
    let (kind, pin) = match kind.split_once(':') {
        Some((k, p)) => (k, Some(p.to_string())),
        None => (kind, None),
    };
    let (ty, inner) = match kind.split_once('$') {
        Some((t, i)) => (t, Some(i)),
        None => (kind, None),
    };
    if pin.as_deref().is_some_and(|p| !p.starts_with('/')) {
        return Err(format!(
            "the pin path of a pinned map must be absolute (under /sys/fs/bpf), got \"{}\"",
            pin.unwrap_or_default()
        ));
    }
    let mut d = String::from("struct { ");
    let mut field = |f: String| {
        d.push_str(&f);
        d.push(' ');
    };
    // Key and value are typed (BTF lets Python read them) where the kernel accepts BTF for the map
    // type; the kernel refuses it for maps of fds, which are declared by size.
    let typed = |field: &mut dyn FnMut(String)| {
        field(format!("__type(key, {key}); __type(value, {leaf});"));
    };
    let sized = |field: &mut dyn FnMut(String)| {
        field(format!("__uint(key_size, sizeof({key})); __uint(value_size, sizeof({leaf}));"));
    };
    let map_type = match ty {
        "hash" | "extern" => "HASH",
        "array" => "ARRAY",
        // bcc's rule: an array when the key is `int` (slots 0..size), otherwise a hash (struct keys
        // such as {name, slot} for per-section histograms, or unsigned keys of any value).
        "histogram" if key.trim() == "int" => "ARRAY",
        "histogram" => "HASH",
        "percpu_hash" => "PERCPU_HASH",
        "percpu_array" => "PERCPU_ARRAY",
        "lru_hash" => "LRU_HASH",
        "lru_percpu_hash" => "LRU_PERCPU_HASH",
        "lpm_trie" => "LPM_TRIE",
        "perf_output" | "perf_array" => "PERF_EVENT_ARRAY",
        "ringbuf" => "RINGBUF",
        "stacktrace" => "STACK_TRACE",
        "prog" => "PROG_ARRAY",
        "cgroup_array" => "CGROUP_ARRAY",
        "devmap" => "DEVMAP",
        "cpumap" => "CPUMAP",
        "xskmap" => "XSKMAP",
        "sockmap" => "SOCKMAP",
        "sockhash" => "SOCKHASH",
        "array_of_maps" => "ARRAY_OF_MAPS",
        "hash_of_maps" => "HASH_OF_MAPS",
        "queue" => "QUEUE",
        "stack" => "STACK",
        "sk_storage" => "SK_STORAGE",
        "inode_storage" => "INODE_STORAGE",
        "task_storage" => "TASK_STORAGE",
        "cgroup_storage" => "CGROUP_STORAGE",
        "percpu_cgroup_storage" => "PERCPU_CGROUP_STORAGE",
        _ => return Err(format!("map kind \"{ty}\" is not supported")),
    };
    field(format!("__uint(type, BPF_MAP_TYPE_{map_type});"));
    match ty {
        // The kernel sizes a perf array by the CPUs when max_entries is 0 (libbpf does the same).
        "perf_output" => field("__uint(key_size, sizeof(int)); __uint(value_size, sizeof(__u32));".into()),
        "ringbuf" => field(format!("__uint(max_entries, {} * 4096);", size.max(1))),
        "stacktrace" => field(format!(
            "__uint(max_entries, {size}); __uint(key_size, sizeof(__u32)); __uint(value_size, sizeof({leaf}));"
        )),
        "queue" | "stack" => field(format!("__uint(max_entries, {size}); __type(value, {leaf});")),
        "array_of_maps" | "hash_of_maps" => {
            let Some(inner) = inner.filter(|i| !i.is_empty()) else {
                return Err(format!("a {ty} map names its inner map: BPF_{}(name, \"inner\", ...)", ty.to_uppercase()));
            };
            field(format!(
                "__uint(max_entries, {size}); __uint(key_size, sizeof({key})); __array(values, typeof({inner}));"
            ));
        }
        "sk_storage" | "inode_storage" | "task_storage" | "cgroup_storage" | "percpu_cgroup_storage" => {
            typed(&mut field)
        }
        "perf_array" | "prog" | "cgroup_array" | "devmap" | "cpumap" | "xskmap" | "sockmap" | "sockhash" => {
            field(format!("__uint(max_entries, {size});"));
            sized(&mut field);
        }
        _ => {
            field(format!("__uint(max_entries, {size});"));
            typed(&mut field);
        }
    }
    if flags > 0 {
        field(format!("__uint(map_flags, {flags});"));
    }
    d.push('}');
    Ok(MapDecl { definition: d, pin, export, external: ty == "extern" })
}

#[cfg(test)]
mod tests {
    use super::map_definition;

    #[test]
    fn kind_strings_carry_pin_export_and_inner_map() {
        let d = map_definition("export/hash:/sys/fs/bpf/x:y", "u32", "u64", 16, 0).unwrap();
        assert_eq!((d.pin.as_deref(), d.export, d.external), (Some("/sys/fs/bpf/x:y"), true, false));
        assert!(d.definition.contains("BPF_MAP_TYPE_HASH") && d.definition.contains("__type(key, u32)"));
        let d = map_definition("array_of_maps$inner", "int", "int", 4, 0).unwrap();
        assert!(d.definition.contains("__array(values, typeof(inner))"));
        assert!(map_definition("extern", "u32", "u64", 4, 0).unwrap().external);
    }

    #[test]
    fn fd_maps_are_declared_by_size_and_bad_kinds_refused() {
        let d = map_definition("prog", "__u32", "__u32", 4, 0).unwrap();
        assert!(d.definition.contains("__uint(key_size, sizeof(__u32))") && !d.definition.contains("__type"));
        assert!(map_definition("hash:relative", "u32", "u64", 4, 0).unwrap_err().contains("absolute"));
        assert!(map_definition("hash_of_maps", "u32", "int", 4, 0).unwrap_err().contains("inner map"));
        assert!(map_definition("nope", "u32", "int", 4, 0).unwrap_err().contains("not supported"));
    }
}
