//! bpf_trace_printk's format, checked when the program compiles as bcc checks it: the kernel refuses a
//! format it cannot print only when the call runs (the call returns an error and prints nothing), and
//! more than three arguments do not fit the helper at all.
//!
//! What the kernel prints changed in 5.13, when bpf_trace_printk came to share bpf_snprintf's parser:
//! before, `%d %i %u %x` with `l`/`ll`, `%p` and one `%s`; from then on also `%X`, `%c`, `%%`, flags and a
//! width, `%p`'s extensions and any number of `%s`. The running kernel's rules apply.

use clang_sys::*;

use super::{expr_children, strip, strip_casts, Rewriter};
use crate::compile::clang::Node;
use crate::error::Result;

/// The kernel's limit (MAX_TRACE_PRINTK_VARARGS).
const MAX_ARGS: usize = 3;
const NEW_PARSER: u32 = (5 << 16) | (13 << 8);

impl Rewriter<'_> {
    /// Check a `bpf_trace_printk(fmt, ...)` call (`__rbcc_trace_printk` in the parse).
    pub(super) fn check_printk(&self, call: &Node) -> Result<()> {
        let ops = expr_children(call);
        let Some(callee) = ops.first().map(|c| strip(c)) else {
            return Ok(());
        };
        if callee.kind != CXCursor_DeclRefExpr || callee.name != "__rbcc_trace_printk" || !call.in_main {
            return Ok(());
        }
        let args = ops.len().saturating_sub(2);
        if args > MAX_ARGS {
            let msg = format!(
                "bpf_trace_printk takes at most {MAX_ARGS} arguments after its format (the kernel's limit), \
                 not {args}: print in several calls, or send the values through a perf or ring buffer"
            );
            return Err(self.error_at(call.start, &msg));
        }
        // a format that is not a literal (a char array the program fills) is the kernel's to judge
        let Some(format) = ops.get(1).map(|f| strip_casts(f)).filter(|f| f.kind == CXCursor_StringLiteral) else {
            return Ok(());
        };
        let Some(bytes) = unescape(&format.name) else {
            return Ok(());
        };
        let modern = crate::kernel::version::linux_version_code() >= NEW_PARSER;
        match format_problem(&bytes, args, modern) {
            Some(problem) => Err(self.error_at(call.start, &format!("bpf_trace_printk: {problem}"))),
            None => Ok(()),
        }
    }
}

/// What is wrong with `fmt` for a call with `args` arguments, on a kernel with (`modern`) or without
/// bpf_snprintf's parser; None when the kernel prints it.
pub(super) fn format_problem(fmt: &[u8], args: usize, modern: bool) -> Option<String> {
    let allowed = if modern {
        "%d %i %u %x %X (with l or ll), %c, %s, %p, %%, flags (0 - + space) and a width"
    } else {
        "%d %i %u %x (with l or ll), %p and one %s"
    };
    let mut conversions = 0;
    let mut strings = 0;
    let mut i = 0;
    // the kernel reads the format up to its first NUL
    let fmt = &fmt[..fmt.iter().position(|&b| b == 0).unwrap_or(fmt.len())];
    while i < fmt.len() {
        let c = fmt[i];
        if !c.is_ascii() || (c.is_ascii_control() && !c.is_ascii_whitespace()) {
            return Some(format!("the format holds the byte {c:#04x}, which the kernel does not print"));
        }
        if c != b'%' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        if modern && fmt.get(i) == Some(&b'%') {
            i += 1;
            continue;
        }
        if modern {
            while matches!(fmt.get(i), Some(b'0' | b'-' | b'+' | b' ')) {
                i += 1;
            }
            while fmt.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        let ok = match fmt.get(i) {
            Some(b's') => {
                strings += 1;
                i += 1;
                modern || ends_plainly(fmt.get(i))
            }
            Some(b'c') if modern => {
                i += 1;
                true
            }
            Some(b'p') => {
                i += 1;
                let (rest, ok) = pointer_extension(&fmt[i..], modern);
                i += rest;
                ok
            }
            _ => {
                let longs = fmt[i..].iter().take(2).take_while(|&&b| b == b'l').count();
                i += longs;
                let ok = matches!(fmt.get(i), Some(b'd' | b'i' | b'u' | b'x')) || (modern && fmt.get(i) == Some(&b'X'));
                i += usize::from(fmt.get(i).is_some());
                ok
            }
        };
        let spec = String::from_utf8_lossy(&fmt[start..i.min(fmt.len())]);
        if !ok {
            return Some(format!("\"{spec}\" is not a conversion the kernel prints; it takes {allowed}"));
        }
        conversions += 1;
        if !modern && strings > 1 {
            return Some(format!("this kernel prints one %s per call, and the format has a second at \"{spec}\""));
        }
        if conversions > MAX_ARGS {
            return Some(format!("the format has more than {MAX_ARGS} conversions (the kernel's limit)"));
        }
    }
    (conversions > args).then(|| {
        format!("the format has {conversions} conversions but the call passes {args} argument(s) to fill them")
    })
}

/// After `%s` or `%p`, kernels before 5.13 take no further letters (no extensions).
fn ends_plainly(next: Option<&u8>) -> bool {
    next.is_none_or(|&b| b == 0 || b.is_ascii_whitespace() || b.is_ascii_punctuation())
}

/// The length of `%p`'s extension at the start of `rest`, and whether the kernel prints it.
fn pointer_extension(rest: &[u8], modern: bool) -> (usize, bool) {
    if !modern {
        return (0, ends_plainly(rest.first()));
    }
    match rest {
        [b'K' | b'x' | b'B' | b's' | b'S', ..] => (1, true),
        [b'i' | b'I', b'4' | b'6', ..] => (2, true),
        [b'k' | b'u', b's', ..] => (2, true),
        _ => (0, ends_plainly(rest.first())),
    }
}

/// The bytes of a string literal as libclang spells it (quoted, C escapes), or None for a wide or
/// otherwise unusual literal.
fn unescape(spelling: &str) -> Option<Vec<u8>> {
    let inner = spelling.strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let e = *inner.get(i)?;
        i += 1;
        out.push(match e {
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'a' => 0x07,
            b'b' => 0x08,
            b'f' => 0x0c,
            b'v' => 0x0b,
            b'x' => {
                let digits = inner[i..].iter().take_while(|d| d.is_ascii_hexdigit()).count();
                let v = u32::from_str_radix(std::str::from_utf8(&inner[i..i + digits]).ok()?, 16).ok()?;
                i += digits;
                v as u8
            }
            b'0'..=b'7' => {
                let digits = 1 + inner[i..].iter().take(2).take_while(|d| (b'0'..=b'7').contains(d)).count();
                let v = u32::from_str_radix(std::str::from_utf8(&inner[i - 1..i - 1 + digits]).ok()?, 8).ok()?;
                i += digits - 1;
                v as u8
            }
            other => other,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{format_problem, unescape};

    fn problem(fmt: &str, args: usize, modern: bool) -> Option<String> {
        format_problem(fmt.as_bytes(), args, modern)
    }

    #[test]
    fn what_kernels_since_5_13_print() {
        for (fmt, args) in [
            ("%d %i %u", 3),
            ("%x", 1),
            ("%ld %lu %lx", 3),
            ("%lld %llu %llX", 3),
            ("%s and %s", 2),
            ("%c%%%5d %-08x", 3),
            ("%p %pK %pS", 3),
            ("%pI4 %pi6 %pks", 3),
            ("100%% sure\n", 0),
            ("tab\there", 0),
        ] {
            assert_eq!(problem(fmt, args, true), None, "{fmt}");
        }
        assert!(problem("%f", 1, true).unwrap().contains("\"%f\" is not a conversion"));
        assert!(problem("%.3d", 1, true).unwrap().contains("\"%.\""));
        assert!(problem("%d %d %d %d", 3, true).unwrap().contains("more than 3 conversions"));
        assert!(problem("%d %d", 1, true).unwrap().contains("2 conversions but the call passes 1"));
        assert!(problem("%lllx", 1, true).is_some());
        assert!(problem("caf\u{e9}", 0, true).unwrap().contains("byte 0xc3"));
        assert!(problem("bell\x07", 0, true).is_some());
    }

    #[test]
    fn what_older_kernels_print() {
        assert_eq!(problem("%d %lu %llx", 3, false), None);
        assert_eq!(problem("%s: %p.", 2, false), None);
        for refused in ["%%", "%5d", "%c", "%X", "%pK"] {
            assert!(problem(refused, 1, false).is_some(), "{refused}");
        }
        assert!(problem("%s %s", 2, false).unwrap().contains("one %s"));
    }

    #[test]
    fn literals_are_read_as_clang_spells_them() {
        assert_eq!(unescape(r#""a\n\t\"\\\x41\101\0""#).unwrap(), b"a\n\t\"\\AA\0");
        assert_eq!(unescape("L\"wide\""), None);
    }
}
