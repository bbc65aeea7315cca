//! The program's license against the helpers it calls. The kernel lets only GPL-compatible programs
//! call its GPL-only helpers (bpf_trace_printk, the probe reads, bpf_perf_event_output, ...); the
//! verifier's refusal comes at load, as a log to read. The compiled object says both things exactly (its
//! `license` section, `-DBPF_LICENSE=...` and `#define BPF_LICENSE` alike, and every helper call, those
//! rbcc's own rewrites and headers make included), so the conflict is a CompileError at the line of the
//! call, from the object's BTF line info.

use std::collections::BTreeMap;

use object::{Object, ObjectSection, SectionKind};

use crate::error::{Diagnostic, Error, Result};

/// What the kernel's license_is_gpl_compatible() accepts.
const GPL_COMPATIBLE: [&str; 6] =
    ["GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL"];

/// Helpers the kernel marks gpl_only for every program type that has them, by helper number.
const GPL_ONLY: [(i32, &str); 27] = [
    (4, "bpf_probe_read"),
    (6, "bpf_trace_printk"),
    (22, "bpf_perf_event_read"),
    (25, "bpf_perf_event_output"),
    (27, "bpf_get_stackid"),
    (35, "bpf_get_current_task"),
    (36, "bpf_probe_write_user"),
    (45, "bpf_probe_read_str"),
    (55, "bpf_perf_event_read_value"),
    (56, "bpf_perf_prog_read_value"),
    (58, "bpf_override_return"),
    (67, "bpf_get_stack"),
    (111, "bpf_skb_output"),
    (112, "bpf_probe_read_user"),
    (113, "bpf_probe_read_kernel"),
    (114, "bpf_probe_read_user_str"),
    (115, "bpf_probe_read_kernel_str"),
    (119, "bpf_read_branch_records"),
    (121, "bpf_xdp_output"),
    (126, "bpf_seq_printf"),
    (127, "bpf_seq_write"),
    (150, "bpf_seq_printf_btf"),
    (158, "bpf_get_current_task_btf"),
    (165, "bpf_snprintf"),
    (175, "bpf_task_pt_regs"),
    (176, "bpf_get_branch_snapshot"),
    (177, "bpf_trace_vprintk"),
];

/// Refuse an object whose license is not GPL-compatible and that calls a GPL-only helper: at the
/// first such call's line of the program (`scratch` is the name it was compiled under, `display` the
/// name to show).
pub fn check(object: &[u8], scratch: &str, display: &str) -> Result<()> {
    let Ok(file) = object::File::parse(object) else {
        return Ok(()); // not ours to judge: the loader reports an unreadable object
    };
    let Some(license) = file.section_by_name("license").and_then(|s| s.data().ok()) else {
        return Ok(());
    };
    let license = String::from_utf8_lossy(license.split(|&b| b == 0).next().unwrap_or_default()).into_owned();
    if GPL_COMPATIBLE.contains(&license.as_str()) {
        return Ok(());
    }
    let lines = LineInfo::read(&file, scratch);
    // helper → first line that calls it
    let mut calls: BTreeMap<&str, Option<u32>> = BTreeMap::new();
    for section in file.sections().filter(|s| s.kind() == SectionKind::Text) {
        let (Ok(name), Ok(code)) = (section.name(), section.data()) else {
            continue;
        };
        for (i, insn) in code.chunks_exact(8).enumerate() {
            // BPF_JMP | BPF_CALL with source register 0: a helper, numbered by the immediate
            if insn[0] != 0x85 || insn[1] >> 4 != 0 {
                continue;
            }
            let id = i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]);
            let Some(&(_, helper)) = GPL_ONLY.iter().find(|(n, _)| *n == id) else {
                continue;
            };
            let line = lines.line_of(name, (i * 8) as u32);
            let first = calls.entry(helper).or_insert(line);
            if let (Some(seen), Some(l)) = (*first, line) {
                *first = Some(seen.min(l));
            }
        }
    }
    let mut calls: Vec<(Option<u32>, &str)> = calls.into_iter().map(|(h, l)| (l, h)).collect();
    calls.sort();
    let Some(&(line, helper)) = calls.first() else {
        return Ok(());
    };
    let at = line.map(|l| format!("{display}:{l}")).unwrap_or_else(|| display.to_string());
    let what = format!(
        "{helper}() is a GPL-only helper, and the program's license is \"{license}\" (BPF_LICENSE): the kernel \
         lets only GPL-compatible programs ({}) call it{}",
        GPL_COMPATIBLE.join(", "),
        why(helper)
    );
    let mut message = format!("{at}: error: {what}");
    let mut diagnostics = Vec::new();
    if let Some(l) = line {
        diagnostics.push(Diagnostic {
            file: display.into(),
            line: l,
            column: None,
            severity: "error".into(),
            message: what,
        });
    }
    for (line, helper) in &calls[1..] {
        let at = line.map(|l| format!("{display}:{l}")).unwrap_or_else(|| display.to_string());
        let what = format!("{helper}() is GPL-only too{}", why(helper));
        message.push_str(&format!("\n{at}: note: {what}"));
        if let Some(l) = line {
            let note =
                Diagnostic { file: display.into(), line: *l, column: None, severity: "note".into(), message: what };
            diagnostics.push(note);
        }
    }
    Err(Error::Compile { message, diagnostics })
}

/// Where a program calls a helper it may not have written itself.
fn why(helper: &str) -> &'static str {
    match helper {
        "bpf_probe_read_kernel" | "bpf_probe_read_kernel_str" => {
            "; rbcc reads kernel memory reached through a pointer (`task->real_parent->tgid`) with it"
        }
        "bpf_perf_event_output" => "; perf_submit() calls it",
        "bpf_get_stackid" => "; get_stackid() calls it",
        _ => "",
    }
}

/// The object's BTF line info: for each program section, (instruction byte offset, line) of the
/// program's own file, in order.
struct LineInfo(BTreeMap<String, Vec<(u32, u32)>>);

impl LineInfo {
    fn read(file: &object::File, scratch: &str) -> LineInfo {
        let section = |name: &str| file.section_by_name(name).and_then(|s| s.data().ok());
        LineInfo(match (section(".BTF"), section(".BTF.ext")) {
            (Some(btf), Some(ext)) => parse_line_info(btf, ext, scratch).unwrap_or_default(),
            _ => BTreeMap::new(),
        })
    }

    /// The line of the program's own file that the instruction at `offset` of `section` came from: the
    /// last line record at or before it that is in that file (a call inlined from a header is
    /// attributed to the line that called into the header).
    fn line_of(&self, section: &str, offset: u32) -> Option<u32> {
        let records = self.0.get(section)?;
        let upto = records.partition_point(|&(off, _)| off <= offset);
        records[..upto].last().map(|&(_, line)| line)
    }
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn c_str(data: &[u8], at: usize) -> Option<&str> {
    let rest = data.get(at..)?;
    std::str::from_utf8(&rest[..rest.iter().position(|&b| b == 0)?]).ok()
}

/// .BTF.ext's line_info (see the kernel's Documentation/bpf/btf.rst): a record size, then per section
/// its name (in .BTF's strings), a count and that many records of (insn_off, file_name_off, line_off,
/// line << 10 | column). Only records of the program's own file are kept.
fn parse_line_info(btf: &[u8], ext: &[u8], scratch: &str) -> Option<BTreeMap<String, Vec<(u32, u32)>>> {
    let strings = {
        let hdr_len = u32_at(btf, 4)? as usize;
        let (str_off, str_len) = (u32_at(btf, 16)? as usize, u32_at(btf, 20)? as usize);
        btf.get(hdr_len + str_off..hdr_len + str_off + str_len)?
    };
    let hdr_len = u32_at(ext, 4)? as usize;
    let (off, len) = (u32_at(ext, 16)? as usize, u32_at(ext, 20)? as usize);
    let info = ext.get(hdr_len + off..hdr_len + off + len)?;
    let rec_size = u32_at(info, 0)? as usize;
    if rec_size < 16 {
        return None;
    }
    let own = |name: &str| name == scratch || name.ends_with(&format!("/{scratch}"));
    let mut out = BTreeMap::new();
    let mut at = 4;
    while at + 8 <= info.len() {
        let section = c_str(strings, u32_at(info, at)? as usize)?.to_string();
        let count = u32_at(info, at + 4)? as usize;
        at += 8;
        let mut records = Vec::new();
        for _ in 0..count {
            let (insn, file, line_col) = (u32_at(info, at)?, u32_at(info, at + 4)?, u32_at(info, at + 12)?);
            if c_str(strings, file as usize).is_some_and(own) && line_col >> 10 != 0 {
                records.push((insn, line_col >> 10));
            }
            at += rec_size;
        }
        out.insert(section, records);
    }
    Some(out)
}
