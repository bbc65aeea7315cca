//! USDT probes an ELF file declares: its `.note.stapsdt` notes (sys/sdt.h), listed for Python, which
//! matches bcc's probe names against them; libbpf does the attaching.

use object::read::elf::{ElfFile64, SectionHeader};
use object::{Endian, Endianness};

use crate::error::{Error, Result};

/// One probe site: (provider, name, address, semaphore address or 0, argument spec).
pub type Site = (String, String, u64, u64, String);

/// Every USDT probe site in `data` (a 64-bit ELF file's bytes).
pub fn sites(data: &[u8]) -> std::result::Result<Vec<Site>, object::Error> {
    let file = ElfFile64::<Endianness>::parse(data)?;
    let endian = file.endian();
    let sections = file.elf_section_table();
    let mut out = Vec::new();
    for section in sections.iter() {
        if sections.section_name(endian, section)? != b".note.stapsdt" {
            continue;
        }
        let Some(mut notes) = section.notes(endian, data)? else { continue };
        while let Some(note) = notes.next()? {
            // SystemTap's v3 notes: owner "stapsdt", type 3; the descriptor holds the probe's pc, the
            // .stapsdt.base address, the semaphore, then provider, name and arguments as C strings.
            let desc = note.desc();
            if note.name() != b"stapsdt" || note.n_type(endian) != 3 || desc.len() < 24 {
                continue;
            }
            let word = |i: usize| {
                let bytes: [u8; 8] = desc[8 * i..8 * i + 8].try_into().expect("8 bytes");
                if endian.is_little_endian() {
                    u64::from_le_bytes(bytes)
                } else {
                    u64::from_be_bytes(bytes)
                }
            };
            let mut strings = desc[24..].split(|&b| b == 0).map(|s| String::from_utf8_lossy(s).into_owned());
            if let (Some(provider), Some(name)) = (strings.next(), strings.next()) {
                out.push((provider, name, word(0), word(2), strings.next().unwrap_or_default()));
            }
        }
    }
    Ok(out)
}

/// The USDT probe sites of the ELF file at `path`.
pub fn sites_in_file(path: &str) -> Result<Vec<Site>> {
    let data = std::fs::read(path).map_err(|e| Error::io(format!("reading {path}"), e))?;
    sites(&data).map_err(|e| Error::attach(path, format!("cannot read the USDT notes of {path}: {e}")))
}
