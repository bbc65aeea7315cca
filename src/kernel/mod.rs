//! Facts about the running kernel: its BTF, tracefs and tracepoint formats, symbols.

pub mod btf;
pub mod features;
pub mod kconfig;
pub mod tracefs;
