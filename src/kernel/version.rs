//! The running kernel's version as the `LINUX_VERSION_CODE` a kernel's generated linux/version.h
//! gives programs, which test it (`#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 14, 0)`) to pick the
//! code for the kernel's structs. Without it such a test silently takes the oldest kernel's branch.

use std::fs;
use std::sync::OnceLock;

/// KERNEL_VERSION(major, minor, patch), as the kernel and libbpf compute it: the patch level stops
/// at 255 (stable series have gone past it, and it has only 8 bits).
pub fn kernel_version(major: u32, minor: u32, patch: u32) -> u32 {
    (major << 16) + (minor << 8) + patch.min(255)
}

/// The running kernel's LINUX_VERSION_CODE (0 when it cannot be told), found once per process.
pub fn linux_version_code() -> u32 {
    static CODE: OnceLock<u32> = OnceLock::new();
    *CODE.get_or_init(|| {
        let read = |path: &str| fs::read_to_string(path).unwrap_or_default();
        code_from(
            &read("/proc/version_signature"),
            &read("/proc/sys/kernel/version"),
            &read("/proc/sys/kernel/osrelease"),
        )
    })
}

/// Ubuntu and Debian number their kernel packages on their own (`5.4.0-42-generic`,
/// `6.1.0-13-amd64`) and say the upstream version elsewhere: Ubuntu in /proc/version_signature
/// (`Ubuntu 5.4.0-42.46-generic 5.4.44`, last), Debian in the kernel's version string
/// (`#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)`). Others: the release.
fn code_from(signature: &str, version: &str, release: &str) -> u32 {
    let ubuntu = signature.split_whitespace().last().and_then(parse);
    let debian = version.split_once("Debian ").and_then(|(_, v)| parse(v));
    ubuntu.or(debian).or_else(|| parse(release)).map(|(a, b, c)| kernel_version(a, b, c)).unwrap_or(0)
}

/// `6.18.44-fc` → (6, 18, 44); `6.1` → (6, 1, 0).
fn parse(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.trim().splitn(3, '.');
    let number = |p: Option<&str>| -> Option<u32> {
        let digits: String = p?.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    };
    let major = number(parts.next())?;
    let minor = number(parts.next())?;
    Some((major, minor, number(parts.next()).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_the_kernel_numbers_them() {
        assert_eq!(kernel_version(6, 18, 44), 0x06122c);
        assert_eq!(kernel_version(4, 19, 300), 0x0413ff);
        assert_eq!(code_from("", "#1 SMP PREEMPT_DYNAMIC @0", "6.18.44-fc-v782\n"), kernel_version(6, 18, 44));
        assert_eq!(code_from("", "", "6.1\n"), kernel_version(6, 1, 0));
        assert_eq!(
            code_from("", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.55-1 (2023-09-29)", "6.1.0-13-amd64"),
            kernel_version(6, 1, 55)
        );
        assert_eq!(
            code_from("Ubuntu 5.4.0-42.46-generic 5.4.44\n", "#46-Ubuntu SMP", "5.4.0-42-generic"),
            kernel_version(5, 4, 44)
        );
        assert_eq!(code_from("", "", "nonsense"), 0);
    }

    #[test]
    fn the_running_kernel_has_a_version() {
        assert!(linux_version_code() >= kernel_version(4, 0, 0));
    }
}
