//! Kernel types a program defines again. bcc compiles against kernel headers, which leave some
//! structs private (`struct nameidata`, `struct mnt_namespace`), so tools carry their own partial copy;
//! rbcc's vmlinux.h has every kernel type, and clang would refuse the second definition. The program's
//! own definition wins inside the program, as under bcc: its `struct nameidata` is renamed
//! `struct __rbcc_user_nameidata` throughout its text, and vmlinux.h's stays for everything else.

use std::collections::HashSet;

/// What a renamed tag starts with. The rewriter still takes such a struct for a kernel one.
pub const USER_TAG_PREFIX: &str = "__rbcc_user_";

/// A struct or union tag: ("struct" | "union", name).
pub type Tag = (String, String);

#[derive(Debug, PartialEq, Eq)]
struct Tok {
    start: usize,
    end: usize,
    ident: bool,
}

/// The tokens of C text that matter here: identifiers and punctuation, with comments, string and
/// character literals and numbers skipped, so that nothing inside them is ever renamed.
fn lex(src: &str) -> Vec<Tok> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let ident_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
        } else if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c && b[i] != b'\n' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_digit() {
            while i < b.len() && (ident_char(b[i]) || b[i] == b'.') {
                i += 1;
            }
        } else if ident_char(c) {
            let start = i;
            while i < b.len() && ident_char(b[i]) {
                i += 1;
            }
            out.push(Tok { start, end: i, ident: true });
        } else {
            if !c.is_ascii_whitespace() {
                out.push(Tok { start: i, end: i + 1, ident: false });
            }
            i += 1;
        }
    }
    out
}

/// For each `struct`/`union` keyword: the index of its tag's token, past any `__attribute__((...))`.
fn tag_positions<'a>(src: &'a str, toks: &'a [Tok]) -> impl Iterator<Item = (&'a str, usize)> + 'a {
    let text = move |t: &Tok| &src[t.start..t.end];
    toks.iter().enumerate().filter(move |(_, t)| t.ident && matches!(text(t), "struct" | "union")).filter_map(
        move |(k, kw)| {
            let mut j = k + 1;
            while toks.get(j).is_some_and(|t| matches!(text(t), "__attribute__" | "__attribute")) {
                j += 1;
                let mut depth = 0;
                while let Some(t) = toks.get(j) {
                    j += 1;
                    match text(t) {
                        "(" => depth += 1,
                        ")" => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        break;
                    }
                }
            }
            toks.get(j).filter(|t| t.ident).map(|_| (text(kw), j))
        },
    )
}

/// The structs and unions `src` defines (`struct nameidata { ... }`).
pub fn definitions(src: &str) -> Vec<Tag> {
    let toks = lex(src);
    let mut out: Vec<Tag> = Vec::new();
    let mut seen = HashSet::new();
    for (kind, j) in tag_positions(src, &toks) {
        let defines = toks.get(j + 1).is_some_and(|t| &src[t.start..t.end] == "{");
        let tag = (kind.to_string(), src[toks[j].start..toks[j].end].to_string());
        if defines && seen.insert(tag.clone()) {
            out.push(tag);
        }
    }
    out
}

/// The tags C text (a header) defines as `struct name {` / `union name {` at the start of a line:
/// one pass, so that checking a program's thousands of types against vmlinux.h stays linear.
pub fn header_definitions(header: &str) -> HashSet<Tag> {
    let mut out = HashSet::new();
    for line in header.lines() {
        let line = line.trim_start();
        for kind in ["struct", "union"] {
            let Some(rest) = line.strip_prefix(kind).and_then(|r| r.strip_prefix(' ')) else { continue };
            if let Some(name) = rest.strip_suffix(" {").or_else(|| rest.split_once(" {").map(|(n, _)| n)) {
                if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    out.insert((kind.to_string(), name.to_string()));
                }
            }
        }
    }
    out
}

/// `src` with every `struct X`/`union X` of `tags` renamed to the program's own type.
pub fn rename(src: &str, tags: &HashSet<Tag>) -> String {
    if tags.is_empty() {
        return src.to_string();
    }
    let toks = lex(src);
    let mut out = String::with_capacity(src.len() + 16 * tags.len());
    let mut at = 0;
    for (kind, j) in tag_positions(src, &toks) {
        let t = &toks[j];
        let name = &src[t.start..t.end];
        if tags.contains(&(kind.to_string(), name.to_string())) {
            out.push_str(&src[at..t.start]);
            out.push_str(USER_TAG_PREFIX);
            out.push_str(name);
            at = t.end;
        }
    }
    out.push_str(&src[at..]);
    out
}

/// clang's messages about a renamed type, with the name the user wrote.
pub fn user_names(msg: &str) -> String {
    msg.replace(USER_TAG_PREFIX, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROG: &str = "struct nameidata {\n    struct path path; // struct nameidata is private\n};\n\
        union bind_u { u8 data; };\n\
        struct __attribute__((packed)) mnt_namespace { u32 x; };\n\
        int f(struct pt_regs *ctx, struct nameidata *nd) {\n\
        bpf_trace_printk(\"struct nameidata %d\", nd->nameidata);\n\
        char c = 'x'; /* struct mnt_namespace */ struct mnt_namespace *ns = 0;\n\
        return sizeof(struct nameidata) + sizeof(union bind_u); }\n";

    #[test]
    fn finds_the_structs_and_unions_a_program_defines() {
        let tags: Vec<String> = definitions(PROG).into_iter().map(|(k, n)| format!("{k} {n}")).collect();
        assert_eq!(tags, ["struct nameidata", "union bind_u", "struct mnt_namespace"]);
        // Uses and forward declarations are not definitions.
        assert!(definitions("struct sock *sk; struct task_struct;").is_empty());
    }

    #[test]
    fn renames_type_names_only_and_keeps_lines() {
        let tags: HashSet<Tag> =
            [("struct", "nameidata"), ("struct", "mnt_namespace")].map(|(k, n)| (k.into(), n.into())).into();
        let out = rename(PROG, &tags);
        assert_eq!(out.lines().count(), PROG.lines().count());
        assert_eq!(out.matches("struct __rbcc_user_nameidata").count(), 3, "{out}");
        assert!(out.contains("struct __attribute__((packed)) __rbcc_user_mnt_namespace {"), "{out}");
        assert!(out.contains("struct __rbcc_user_mnt_namespace *ns"), "{out}");
        // Comments, strings and member names stay as written.
        for kept in
            ["// struct nameidata is private", "\"struct nameidata %d\"", "nd->nameidata", "/* struct mnt_namespace */"]
        {
            assert!(out.contains(kept), "{kept:?} changed in:\n{out}");
        }
        assert!(out.contains("struct path path;") && out.contains("union bind_u {"), "{out}");
    }

    #[test]
    fn header_definitions_start_a_line() {
        let header = "struct nameidata;\nstruct nameidata {\n\tint x;\n};\n/* see struct qstr { */\n";
        let defined = header_definitions(&format!("{header}  union u {{ int a; }};\n"));
        assert!(defined.contains(&("struct".into(), "nameidata".into())));
        assert!(defined.contains(&("union".into(), "u".into())));
        assert!(!defined.contains(&("struct".into(), "qstr".into())));
        assert!(!defined.contains(&("union".into(), "nameidata".into())));
        assert_eq!(
            user_names("no member named 'x' in 'struct __rbcc_user_nameidata'"),
            "no member named 'x' in 'struct nameidata'"
        );
    }
}
