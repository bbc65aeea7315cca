//! Kernel addresses → symbols, and kernel symbols → addresses, from kallsyms as bcc's KSyms reads
//! it: a symbol's name as the kernel spells it (bcc's `ksym` never demangles), the offset into it,
//! and its module (`kernel`, or the name kallsyms shows in brackets: `ext4`, `bpf` for a BPF
//! program, `__builtin__ftrace`), which bcc shows as `name [module]`.
//!
//! blazesym resolves the address from its copy of kallsyms, taken once per symbolizer; a BPF program
//! loaded since is not in it, and its addresses would take the name of whatever symbol precedes them
//! (bcc has the same flaw). Each thread keeps its kernel symbolizer only while no BPF program has
//! been loaded since it was made, which one `BPF_PROG_GET_NEXT_ID` tells (asked at most every 20 ms:
//! a program loaded within 20 ms of a lookup may be missed by the next ones). Modules, which
//! blazesym does not report, come from this file's own read of kallsyms, made when first asked for.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use blazesym::symbolize::source::{Kernel, Source};
use blazesym::symbolize::{Input, Symbolized, Symbolizer};
use blazesym::MaybeDefault;

use super::Symbol;

/// Kernel address → its symbol; the module only `with_module` (an empty string otherwise), as
/// finding it reads kallsyms.
pub fn ksym(addr: u64, with_module: bool) -> Option<Symbol> {
    SNAPSHOT.with(|cell| {
        let mut cell = cell.borrow_mut();
        let snapshot = match cell.take() {
            // the frames of a stack, looked up one after the other, share one check (it costs more
            // than a lookup)
            Some(snapshot) if snapshot.checked.elapsed() < RECHECK_AFTER => cell.insert(snapshot),
            Some(mut snapshot) if newest_prog_from(snapshot.newest_prog) == snapshot.newest_prog => {
                snapshot.checked = Instant::now();
                cell.insert(snapshot)
            }
            _ => cell.insert(Snapshot::new(newest_prog_from(0))),
        };
        snapshot.ksym(addr, with_module)
    })
}

/// A snapshot found current is not checked again for this long.
const RECHECK_AFTER: Duration = Duration::from_millis(20);

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

/// The kernel's symbols as one thread last read them.
struct Snapshot {
    /// Without demangling, as bcc's `ksym`; its kallsyms read at the first lookup.
    symbolizer: Symbolizer,
    /// The id of the newest BPF program when this snapshot was made (0: none, or not allowed to ask).
    newest_prog: u32,
    /// The modules of the symbols that have one, by symbol address; read on first need.
    modules: Option<HashMap<u64, Box<str>>>,
    /// When `newest_prog` was last found to be the newest.
    checked: Instant,
}

thread_local! {
    static SNAPSHOT: RefCell<Option<Snapshot>> = const { RefCell::new(None) };
}

impl Snapshot {
    fn new(newest_prog: u32) -> Snapshot {
        let symbolizer = Symbolizer::builder().enable_demangling(false).enable_code_info(false).build();
        Snapshot { symbolizer, newest_prog, modules: None, checked: Instant::now() }
    }

    fn ksym(&mut self, addr: u64, with_module: bool) -> Option<Symbol> {
        let kernel = Kernel { vmlinux: MaybeDefault::None, debug_syms: false, ..Default::default() };
        let (name, offset) =
            match self.symbolizer.symbolize_single(&Source::Kernel(kernel), Input::AbsAddr(addr)).ok()? {
                Symbolized::Sym(sym) => (sym.name.into_owned(), sym.offset as u64),
                Symbolized::Unknown(_) => return None,
            };
        let module = if with_module {
            let modules = self.modules.get_or_insert_with(read_modules);
            modules.get(&(addr - offset)).map_or("kernel", |m| m).to_string()
        } else {
            String::new()
        };
        Some(Symbol { name, offset, module })
    }
}

/// The id of the newest BPF program loaded, from `start` on (`start` itself if none is newer, or the
/// kernel does not let this process ask).
fn newest_prog_from(start: u32) -> u32 {
    let mut id = start;
    loop {
        let mut next = 0;
        // SAFETY: libbpf writes one u32 through the pointer, to a local that outlives the call.
        if unsafe { libbpf_sys::bpf_prog_get_next_id(id, &mut next) } != 0 {
            return id;
        }
        id = next;
    }
}

fn read_modules() -> HashMap<u64, Box<str>> {
    let text = fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let mut modules = HashMap::new();
    each_symbol(&text, |addr, _name, module| {
        if let Some(module) = module {
            modules.insert(addr, module.into());
        }
        ControlFlow::Continue(())
    });
    modules
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
