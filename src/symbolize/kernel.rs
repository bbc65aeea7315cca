//! Kernel addresses → symbols, and kernel symbols → addresses, from kallsyms as bcc's KSyms reads
//! it: a symbol's name as the kernel spells it (bcc's `ksym` never demangles), the offset into it,
//! and its module (`kernel`, or the name kallsyms shows in brackets: `ext4`, `bpf` for a BPF
//! program, `__builtin__ftrace`), which bcc shows as `name [module]`.
//!
//! blazesym resolves the address but does not report modules; the modules come from this file's own
//! read of kallsyms, made only when a module is asked for.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::ops::{ControlFlow, Range};
use std::sync::Mutex;

use super::process::{self, Mode};
use super::Symbol;

/// Kernel address → its symbol; the module only `with_module` (an empty string otherwise), as
/// finding it may read kallsyms.
pub fn ksym(addr: u64, with_module: bool) -> Option<Symbol> {
    let (name, offset) = process::with(Mode::Mangled, |lookups| lookups.kernel(addr))?;
    let module = if with_module { module_of(addr - offset) } else { String::new() };
    Some(Symbol { name, offset, module })
}

/// Kernel symbol → its address from /proc/kallsyms (the first of that name), or None.
pub fn ksymname(name: &str) -> Option<u64> {
    let text = fs::read_to_string("/proc/kallsyms").ok()?;
    let mut found = None;
    each_symbol(&text, |addr, sym, _module| {
        if sym == name {
            found = Some(addr);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}

/// Each line of kallsyms text: (address, name, module if bracketed).
fn each_symbol<'a>(text: &'a str, mut f: impl FnMut(u64, &'a str, Option<&'a str>) -> ControlFlow<()>) {
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(addr), Some(_type), Some(name)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr, 16) else { continue };
        let module = fields.next().and_then(|m| m.strip_prefix('[')).and_then(|m| m.strip_suffix(']'));
        if f(addr, name, module).is_break() {
            return;
        }
    }
}

/// The modules of the symbols outside the kernel's own text, by symbol address.
struct Modules {
    /// `_stext` to `_etext`: the kernel's own code, every symbol in it the kernel's.
    text: Range<u64>,
    of: HashMap<u64, Box<str>>,
    /// Symbol addresses looked up since the last read and not found in it.
    misses: HashSet<u64>,
}

impl Modules {
    fn read() -> Modules {
        let text = fs::read_to_string("/proc/kallsyms").unwrap_or_default();
        let (mut start, mut end) = (0, 0);
        let mut of = HashMap::new();
        each_symbol(&text, |addr, name, module| {
            match (name, module) {
                ("_stext", None) => start = addr,
                ("_etext", None) => end = addr,
                (_, Some(module)) => {
                    of.insert(addr, module.into());
                }
                _ => {}
            }
            ControlFlow::Continue(())
        });
        Modules { text: start..end, of, misses: HashSet::new() }
    }
}

/// Read once per process, and again when a symbol address outside the kernel's text is not in it:
/// a module or BPF program loaded since (once per such address, so an address of the kernel's own
/// data does not reread it every time).
static MODULES: Mutex<Option<Modules>> = Mutex::new(None);

fn module_of(sym_addr: u64) -> String {
    let mut guard = MODULES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let modules = guard.get_or_insert_with(Modules::read);
    if !modules.text.contains(&sym_addr) {
        if !modules.of.contains_key(&sym_addr) && !modules.misses.contains(&sym_addr) {
            let misses = std::mem::take(&mut modules.misses);
            *modules = Modules::read();
            modules.misses = misses;
            modules.misses.insert(sym_addr);
        }
        if let Some(module) = modules.of.get(&sym_addr) {
            return module.to_string();
        }
    }
    "kernel".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_lines_give_address_name_and_bracketed_module() {
        let text = "ffffffff81000000 T _stext\nffffffffc0001000 t bpf_prog_abc_f\t[bpf]\nbad line\n";
        let mut seen = Vec::new();
        each_symbol(text, |addr, name, module| {
            seen.push((addr, name, module));
            ControlFlow::Continue(())
        });
        assert_eq!(seen, [(0xffffffff81000000, "_stext", None), (0xffffffffc0001000, "bpf_prog_abc_f", Some("bpf"))]);
    }
}
