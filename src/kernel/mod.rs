//! Facts about the running kernel: its BTF, configuration and version, tracefs and tracepoint formats,
//! the BPF programs loaded in it.

pub mod btf;
pub mod features;
pub mod kconfig;
pub mod progs;
pub mod tracefs;
pub mod version;
