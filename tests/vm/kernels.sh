# Sourced by run-in-vm.sh and test-kernels.sh: the Debian kernel packages the VMs boot, found in the apt
# lists by name, so they follow the archive as new builds replace old ones.

# The kernel linux-image-amd64 depends on: the distribution's own (Debian 12: 6.1).
vm_default_kernel() {
  apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -1
}

# The newest build of kernel series $1 (e.g. 6.12, Debian 12's backported LTS) in the apt lists: the plain
# amd64 flavour (not rt, not cloud), unsigned (the same kernel without Secure Boot's signing packaging).
vm_newest_kernel() {
  local series=${1//./\\.}
  apt-cache search --names-only "^linux-image-${series}\.[0-9]+\+deb[0-9]+-amd64-unsigned\$" \
    | cut -d' ' -f1 | sort -V | tail -1
}

# The apt lists, fetched when they do not know linux-image-amd64 yet (a fresh machine).
vm_apt_lists() {
  apt-cache show linux-image-amd64 >/dev/null 2>&1 || apt-get update -qq
}
