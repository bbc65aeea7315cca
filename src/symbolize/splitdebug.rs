//! Debug files found by build id alone. bcc (like gdb) looks for `DIR/.build-id/xx/yyyy.debug` for
//! any ELF file with a build id; blazesym looks there only while following a `.gnu_debuglink`, so a
//! stripped binary that has a build id but no debug link would stay unresolved. blazesym's process
//! dispatcher lets rbcc hand it, for such a mapped file, a resolver over the file and its debug file.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use blazesym::helper::{read_elf_build_id, ElfResolver};
use blazesym::symbolize::{
    FindSymOpts, ProcessMemberInfo, ProcessMemberType, Reason, Resolve, ResolvedSym, Symbolize, TranslateFileOffset,
};
use blazesym::{Addr, Result};

use super::debug_dirs;

/// A mapped file and its debug file, opened once for every process that maps the file.
#[derive(Debug)]
struct Pair {
    binary: ElfResolver,
    debug: ElfResolver,
}

/// The pair as one process maps it: symbols name the file by the path that process knows it by.
#[derive(Debug)]
struct Member {
    pair: Rc<Pair>,
    module: OsString,
}

impl Symbolize for Member {
    fn find_sym(&self, addr: Addr, opts: &FindSymOpts) -> Result<Result<ResolvedSym<'_>, Reason>> {
        // Names from the file's own symbol tables first, as bcc's; source lines and inlined functions
        // are only in the debug file, so a lookup that asks for them starts there.
        let (first, second) = match opts {
            FindSymOpts::Basic => (&self.pair.binary, &self.pair.debug),
            _ => (&self.pair.debug, &self.pair.binary),
        };
        // a sizeless symbol (a version definition, a label) covers only its own address, as in bcc
        let found = match first.find_sym(addr, opts)? {
            Ok(sym) if sym.size.is_some() || sym.addr == addr => Ok(sym),
            _ => second.find_sym(addr, opts)?,
        };
        Ok(found.map(|mut sym| {
            sym.module = Some(self.module.as_os_str());
            sym
        }))
    }
}

impl TranslateFileOffset for Member {
    fn file_offset_to_virt_offset(&self, file_offset: u64) -> Result<Option<Addr>> {
        self.pair.binary.file_offset_to_virt_offset(file_offset)
    }
}

/// A file's identity: a file replaced in place (a rebuilt binary) is another file.
type FileKey = (u64, u64, u64, i64);

thread_local! {
    /// Every file a dispatch has looked at: its pair, or None (no build id, or no debug file by it).
    static PAIRS: RefCell<HashMap<FileKey, Option<Rc<Pair>>>> = RefCell::new(HashMap::new());
}

/// blazesym's process dispatcher: a resolver for a mapped file that has a debug file by build id;
/// None leaves the file to blazesym (its symbols, its `.gnu_debuglink`).
pub(super) fn dispatch(info: ProcessMemberInfo<'_>) -> Result<Option<Box<dyn Resolve>>> {
    let ProcessMemberType::Path(path) = info.member_entry else {
        return Ok(None);
    };
    let member = pair_for(&path.maps_file)
        .map(|pair| Box::new(Member { pair, module: path.symbolic_path.clone().into_os_string() }) as Box<dyn Resolve>);
    Ok(member)
}

fn pair_for(file: &Path) -> Option<Rc<Pair>> {
    let meta = fs::metadata(file).ok()?;
    let key = (meta.dev(), meta.ino(), meta.size(), meta.mtime());
    if let Some(known) = PAIRS.with(|pairs| pairs.borrow().get(&key).cloned()) {
        return known;
    }
    let pair = open_pair(file).map(Rc::new);
    PAIRS.with(|pairs| pairs.borrow_mut().insert(key, pair.clone()));
    pair
}

fn open_pair(file: &Path) -> Option<Pair> {
    let id = read_elf_build_id(file).ok()??;
    let debug = build_id_path(&id, ".debug")?;
    // no directories of their own: the pair is what was found, the file needs no link followed
    let none: [&Path; 0] = [];
    Some(Pair {
        binary: ElfResolver::open_with_debug_dirs(file, none).ok()?,
        debug: ElfResolver::open_with_debug_dirs(&debug, none).ok()?,
    })
}

/// `DIR/.build-id/xx/yyyy<suffix>` for build id `xxyyyy`, in the first debug directory that has it.
/// The kernel pads a stack frame's build id to 20 bytes with zeros: a shorter id (16 bytes, md5 or
/// uuid style) is tried without them.
pub(super) fn build_id_path(id: &[u8], suffix: &str) -> Option<PathBuf> {
    build_id_path_in(debug_dirs(), id, suffix)
}

fn build_id_path_in(dirs: &[PathBuf], id: &[u8], suffix: &str) -> Option<PathBuf> {
    let ids = [Some(id), id.strip_suffix(&[0; 4]).filter(|_| id.len() == 20)];
    ids.into_iter().flatten().filter(|id| id.len() >= 2).find_map(|id| {
        let hex = hex::encode(id);
        let name = format!("{}{suffix}", &hex[2..]);
        dirs.iter().map(|dir| dir.join(".build-id").join(&hex[..2]).join(&name)).find(|path| path.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_id_files_are_found_by_hex_and_without_the_kernels_padding() {
        let dir = std::env::temp_dir().join(format!("rbcc-buildid-{}", std::process::id()));
        let file = dir.join(".build-id/ab/cdef0123456789abcdef0123456789.debug");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, b"").unwrap();
        let dirs = [PathBuf::from("/nonexistent-rbcc"), dir.clone()];
        // a 16-byte id, as a stack frame holds it: padded with zeros to 20 bytes
        let mut id = hex::decode("abcdef0123456789abcdef0123456789").unwrap();
        assert_eq!(build_id_path_in(&dirs, &id, ".debug"), Some(file.clone()));
        id.extend([0; 4]);
        assert_eq!(build_id_path_in(&dirs, &id, ".debug"), Some(file));
        assert_eq!(build_id_path_in(&dirs, &id, ""), None);
        fs::remove_dir_all(dir).unwrap();
    }
}
