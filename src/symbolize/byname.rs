//! Symbol names → file offsets in an ELF file, where a uprobe attaches: the file's own symbol tables
//! first, then, as bcc does, its split debug file (`.gnu_debuglink`, or `.build-id/xx/yyyy.debug` in
//! a debug directory) and DWARF. A distribution strips a library's local functions (libc's
//! `_IO_*` internals, a static function of a program) from its symbol tables and ships their names
//! in the debug package only.

use std::fs;
use std::path::Path;

use blazesym::helper::read_elf_build_id;
use blazesym::inspect::{self, Inspector};
use object::{Object as _, ObjectSegment as _};

use super::splitdebug;

/// Where the bytes of function or symbol `name` of ELF file `file` are in that file.
pub fn file_offset_of(inspector: &Inspector, file: &Path, name: &str) -> Option<u64> {
    // the symbol tables give the offset themselves
    if let Some(offset) = lookup(inspector, file, name, false).and_then(|sym| sym.1) {
        return Some(offset);
    }
    // A debug file holds the addresses the binary was linked at, but its sections have no bytes, so
    // an offset into it means nothing: the binary's own segments turn the address into the offset.
    let addr = lookup(inspector, file, name, true)
        .map(|sym| sym.0)
        .or_else(|| lookup(inspector, &build_id_debug_file(file)?, name, true).map(|sym| sym.0))?;
    offset_of_address(file, addr)
}

/// (address, file offset) of the first symbol called `name`; `debug` follows the debug link and reads
/// DWARF as well.
fn lookup(inspector: &Inspector, file: &Path, name: &str, debug: bool) -> Option<(u64, Option<u64>)> {
    let mut elf = inspect::source::Elf::new(file);
    elf.debug_syms = debug;
    let found = inspector.lookup(&inspect::source::Source::Elf(elf), &[name]).ok()?;
    found.into_iter().flatten().find(|sym| sym.addr != 0).map(|sym| (sym.addr, sym.file_offset))
}

fn build_id_debug_file(file: &Path) -> Option<std::path::PathBuf> {
    let id = read_elf_build_id(file).ok()??;
    splitdebug::build_id_path(&id, ".debug")
}

/// The file offset of link-time address `addr`, through the loadable segment that maps it.
fn offset_of_address(file: &Path, addr: u64) -> Option<u64> {
    let data = fs::read(file).ok()?;
    let elf = object::File::parse(&*data).ok()?;
    elf.segments().find_map(|segment| {
        let (start, size) = segment.file_range();
        let vaddr = segment.address();
        (vaddr <= addr && addr < vaddr + size).then(|| start + (addr - vaddr))
    })
}
