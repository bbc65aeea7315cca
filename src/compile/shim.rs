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

/// The field-name macros of the networking headers (`sk->sk_state` for `sk->__sk_common.skc_state`),
/// which BTF cannot carry. They are macros on very common words, so a program gets them only when it
/// includes one of these headers, as it would with the kernel's own.
const SOCK_HEADERS: [&str; 6] =
    ["net/sock.h", "net/inet_sock.h", "net/tcp.h", "linux/tcp.h", "net/inet_connection_sock.h", "net/udp.h"];
const SOCK_FIELDS: &str = "\
#define sk_node __sk_common.skc_node
#define sk_nulls_node __sk_common.skc_nulls_node
#define sk_refcnt __sk_common.skc_refcnt
#define sk_tx_queue_mapping __sk_common.skc_tx_queue_mapping
#define sk_dontcopy_begin __sk_common.skc_dontcopy_begin
#define sk_dontcopy_end __sk_common.skc_dontcopy_end
#define sk_hash __sk_common.skc_hash
#define sk_portpair __sk_common.skc_portpair
#define sk_num __sk_common.skc_num
#define sk_dport __sk_common.skc_dport
#define sk_addrpair __sk_common.skc_addrpair
#define sk_daddr __sk_common.skc_daddr
#define sk_rcv_saddr __sk_common.skc_rcv_saddr
#define sk_family __sk_common.skc_family
#define sk_state __sk_common.skc_state
#define sk_reuse __sk_common.skc_reuse
#define sk_reuseport __sk_common.skc_reuseport
#define sk_ipv6only __sk_common.skc_ipv6only
#define sk_net_refcnt __sk_common.skc_net_refcnt
#define sk_bound_dev_if __sk_common.skc_bound_dev_if
#define sk_bind_node __sk_common.skc_bind_node
#define sk_prot __sk_common.skc_prot
#define sk_net __sk_common.skc_net
#define sk_v6_daddr __sk_common.skc_v6_daddr
#define sk_v6_rcv_saddr __sk_common.skc_v6_rcv_saddr
#define sk_cookie __sk_common.skc_cookie
#define sk_incoming_cpu __sk_common.skc_incoming_cpu
#define sk_flags __sk_common.skc_flags
#define sk_rxhash __sk_common.skc_rxhash
#define inet_daddr sk.__sk_common.skc_daddr
#define inet_rcv_saddr sk.__sk_common.skc_rcv_saddr
#define inet_dport sk.__sk_common.skc_dport
#define inet_num sk.__sk_common.skc_num
";

/// The flag `BPF(usdt_contexts=...)` compiles with: its functions are attached to USDT probes, which
/// libbpf does only for objects that have its USDT maps, even where no argument is read.
pub const USDT_FLAG: &str = "-D__RBCC_USDT";

/// What goes between the prelude and the program because of what the program uses: `#define`s its
/// `#include <...>` lines would bring, and libbpf's USDT header when it reads USDT arguments or is
/// compiled with [`USDT_FLAG`].
pub fn include_macros(text: &str, cflags: &[String]) -> String {
    let includes = |header: &str| {
        text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with('#') && l.contains("include") && l.contains(&format!("<{header}>"))
        })
    };
    let mut out = String::new();
    if SOCK_HEADERS.iter().any(|h| includes(h)) {
        out.push_str(SOCK_FIELDS);
    }
    // bcc's packet header structs have short, common names (`struct ip_t`): only for programs that ask
    if includes("bcc/proto.h") {
        out.push_str("#include <rbcc/proto.h>\n");
    }
    // libbpf's USDT support brings two maps; only programs attached to USDT probes get them.
    if text.contains("bpf_usdt_readarg") || cflags.iter().any(|f| f == USDT_FLAG) {
        out.push_str("#include <bpf/usdt.bpf.h>\n");
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
    fn socket_field_macros_come_with_the_networking_headers() {
        assert!(include_macros("#include <net/sock.h>\nint x;", &[]).contains("#define sk_state __sk_common.skc_state"));
        assert!(
            include_macros("  #  include <linux/tcp.h>\n", &[]).contains("#define inet_dport sk.__sk_common.skc_dport")
        );
        assert_eq!(include_macros("#include <linux/sched.h>\nint sk_state;", &[]), "");
    }

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
