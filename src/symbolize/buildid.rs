//! Frames of a BPF_STACK_TRACE_BUILDID map → symbols. The kernel records such a frame as the build
//! id of the file the address is in and the offset into that file, which stays meaningful after the
//! process has exited. bcc resolves it through the files registered with `BPF.add_module(path)`;
//! rbcc also through a debug directory's `.build-id/xx/yyyy`, the file itself as Fedora links it (not
//! `yyyy.debug`: a debug file keeps the segments' addresses but not their file offsets, which the
//! frame's offset is one of). The file's debug information is followed as for a process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use blazesym::helper::read_elf_build_id;

use super::process::{self, Mode};
use super::splitdebug::build_id_path;
use super::Symbol;

/// Build id → the file registered for it (bcc's build-id symbol cache is one per process too).
static MODULES: Mutex<Option<HashMap<Vec<u8>, PathBuf>>> = Mutex::new(None);

/// Registers ELF file `path` under its build id; false if it has none (or is no ELF file), which
/// bcc ignores silently too.
pub fn add_module(path: &str) -> bool {
    let Ok(Some(id)) = read_elf_build_id(Path::new(path)) else {
        return false;
    };
    let mut modules = MODULES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    modules.get_or_insert_with(HashMap::new).insert(id.to_vec(), PathBuf::from(path));
    true
}

/// The registered file of build id `id`, as a frame holds it: padded with zeros to 20 bytes.
fn registered(id: &[u8]) -> Option<PathBuf> {
    let modules = MODULES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    modules.as_ref()?.iter().find_map(|(known, path)| {
        let padded = id.strip_prefix(known.as_slice()).is_some_and(|rest| rest.iter().all(|b| *b == 0));
        padded.then(|| path.clone())
    })
}

/// The symbol at file offset `offset` of the file with build id `id`.
pub fn build_id_sym(id: &[u8], offset: u64) -> Option<Symbol> {
    let path = registered(id).or_else(|| build_id_path(id, ""))?;
    process::with(Mode::Plain, |lookups| lookups.file_offset(&path, offset)).map(|found| found.symbol)
}
