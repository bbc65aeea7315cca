#!/usr/bin/env bash
# Run a command as root inside QEMU on Debian's stock kernel (linux-image-amd64: kprobes, fentry, BTF),
# so the probe types this project's own kernel lacks are tested for real.
#
#   tests/vm/run-in-vm.sh CMD [ARG...]      exit status = CMD's in the guest (125: the VM failed)
#
# The guest's root file system is the host's /, read-only over virtio-9p: the host's Python, rbcc's
# build and the test suite run there unchanged. /run and /dev/shm are guest tmpfs, and TMPDIR is
# /run/tmp (the host's /tmp stays visible, read-only, as a checkout may live there); $RBCC_VM_DIR
# (the work directory, which also caches the downloaded packages) is shared read-write. The kernel
# package is downloaded and unpacked there only; nothing is installed on the host but QEMU.
#
# Environment: RBCC_VM_DIR (default /var/cache/rbcc-vm), RBCC_VM_KERNEL (a linux-image-* package;
# default: the one linux-image-amd64 depends on), RBCC_VM_MEM (2G), RBCC_VM_CPUS (host's), RBCC_VM_TIMEOUT
# (seconds for the whole guest command, default 1800), RBCC_VM_ENV (space-separated NAME=VALUE pairs
# exported in the guest).
#
# Runs may overlap (test-kernels.sh boots several kernels at once), in the same work directory: the
# downloads and boot files are made under a lock, and each run has its own directory for its command and
# exit status.
set -euo pipefail

[ $# -gt 0 ] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }
W=${RBCC_VM_DIR:-/var/cache/rbcc-vm}
MEM=${RBCC_VM_MEM:-2G}
CPUS=${RBCC_VM_CPUS:-$(nproc)}
GUEST_TIMEOUT=${RBCC_VM_TIMEOUT:-1800}
say() { echo "[vm] $*" >&2; }
mkdir -p "$W"/{deb,boot,out}
export DEBIAN_FRONTEND=noninteractive
. "$(dirname "$0")/kernels.sh"

# Until the boot files are ready, one run at a time: another one may be installing QEMU (apt's lock
# refuses a second), downloading the same busybox, or writing the same initramfs.
exec 9>"$W/.lock"
flock 9

# -- host tools: QEMU, and the apt lists to find the guest's packages
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v xz >/dev/null || missing+=(xz-utils)
command -v cpio >/dev/null || missing+=(cpio)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
vm_apt_lists

# -- the guest kernel and busybox: downloaded once, unpacked under $W
fetch() {  # fetch PACKAGE -> directory holding its unpacked contents
  local pkg=$1 dir=$W/deb/$1
  if [ ! -e "$dir/.done" ]; then
    say "downloading $pkg"
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$W/deb" && rm -f "${pkg}"_*.deb && apt-get download -qq "$pkg" 2>/dev/null)
    dpkg-deb -x "$W"/deb/"${pkg}"_*.deb "$dir"
    touch "$dir/.done"
  fi
  echo "$dir"
}
KPKG=${RBCC_VM_KERNEL:-$(vm_default_kernel)}
KDIR=$(fetch "$KPKG")
# the release the package holds (an -unsigned package's name is not its kernel's release)
KREL=$(basename "$(ls -d "$KDIR"/lib/modules/*/ | head -1)")
BUSYBOX=$(fetch busybox-static)/bin/busybox
MODS=$KDIR/lib/modules/$KREL

# Under TCG, unpacking a compressed kernel costs seconds per boot; a kernel built with PVH boots from its
# uncompressed ELF image directly, so unpack it once.
KERNEL=$KDIR/boot/vmlinuz-$KREL
ELF=$W/boot/vmlinux-$KREL
if [ ! -s "$ELF" ] && grep -q '^CONFIG_PVH=y' "$KDIR/boot/config-$KREL"; then
  start=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$KERNEL" | head -1 | cut -d: -f1 || true)
  # xz complains about the bytes after its stream; what it wrote before that is the whole image
  [ -z "$start" ] || tail -c +$((start + 1)) "$KERNEL" | xz -dc > "$ELF.tmp" 2>/dev/null || true
  if [ -s "$ELF.tmp" ] && [ "$(head -c 4 "$ELF.tmp" | od -An -c | tr -d ' ')" = '177ELF' ]; then
    mv "$ELF.tmp" "$ELF"
  fi
  rm -f "$ELF.tmp"
fi
[ -s "$ELF" ] && KERNEL=$ELF

# -- initramfs: busybox, the modules 9p needs (with their dependencies), loop and ext4 (the guest has no
#    disk: cachestat's test loop-mounts an ext4 image of its own; ext4 asks the crypto API for crc32c,
#    which the guest cannot load on demand), and an init that mounts the host's /
#    and runs the command
INITRD=$W/boot/initrd-$KREL.gz
if [ ! -s "$INITRD" ] || [ "$0" -nt "$INITRD" ]; then
  R=$W/boot/root-$KREL && rm -rf "$R" && mkdir -p "$R"/{bin,dev,proc,sys,host,mods}
  cp "$BUSYBOX" "$R/bin/busybox"
  order=()
  module() {  # copy module $1 (decompressed) after the modules it depends on
    local name=$1 file dep
    for dep in "${order[@]}"; do [ "$dep" = "$name" ] && return; done
    grep -q "/$name\.ko" "$MODS/modules.builtin" && return
    file=$(find "$MODS/kernel" -name "$name.ko*" | head -1)
    [ -n "$file" ] || { echo "no module $name in $KPKG" >&2; exit 125; }
    case $file in *.xz) xz -dc "$file" ;; *.zst) zstd -dc "$file" ;; *) cat "$file" ;; esac > "$R/mods/$name.ko"
    for dep in $(tr '\0' '\n' < "$R/mods/$name.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do module "$dep"; done
    order+=("$name")
  }
  for m in virtio_pci 9pnet_virtio 9p loop crc32c_generic ext4; do module "$m"; done
  printf '%s\n' "${order[@]}" > "$R/mods/order"
  cat > "$R/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m.ko || echo "[vm] insmod $m failed"; done
arg() { sed -n "s/.*rbcc\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
W=$(arg w)
O=$(arg out)
opts=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o $opts,ro,cache=loose hostroot /host || { echo "[vm] cannot mount the host's /"; poweroff -f; }
mount -t proc proc /host/proc && mount -t sysfs sys /host/sys && mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm && mount -t devpts pts /host/dev/pts && mount -t tmpfs shm /host/dev/shm
mount -t tmpfs run /host/run
mount -t tracefs tracefs /host/sys/kernel/tracing
mount -t debugfs debugfs /host/sys/kernel/debug
mount -t bpf bpf /host/sys/fs/bpf
mount -t 9p -o $opts,cache=mmap work /host$W || echo "[vm] cannot mount $W"
ip link set lo up 2>/dev/null
ulimit -l unlimited
echo "[vm] guest $(uname -r) ready after $(cut -d' ' -f1 /proc/uptime)s"
timeout -s KILL "$(arg timeout)" chroot /host /bin/sh "$O/command.sh"
echo $? > /host$O/rc
sync
poweroff -f
INIT
  chmod +x "$R/init"
  (cd "$R" && find . | cpio -o -H newc --quiet | gzip -1 > "$INITRD.tmp") && mv "$INITRD.tmp" "$INITRD"
  rm -rf "$R"
fi
exec 9>&-  # the lock's fd, closed: the next run may go on

# -- this run's own directory under $W (the guest sees $W): its command and exit status
O=$(mktemp -d "$W/out/run.XXXXXX")
trap 'rm -rf "$O"' EXIT
trap 'exit 130' INT TERM

# -- the command, run from the same directory in the guest
{
  # the host's /tmp stays visible (a checkout may live there); scratch files go to the guest's /run
  echo "mkdir -p /run/tmp && export TMPDIR=/run/tmp"
  echo "export HOME=/root PATH=$(printf %q "$PATH") RBCC_IN_VM=$KREL"
  # a packaged kernel keeps its config beside it, not in /proc or the (host's) /boot
  echo "export RBCC_KERNEL_CONFIG=$(printf %q "$KDIR/boot/config-$KREL")"
  for kv in ${RBCC_VM_ENV:-}; do echo "export $(printf %q "$kv")"; done
  echo "cd $(printf %q "$PWD")"
  printf '%q ' "$@"
  echo
} > "$O/command.sh"

ACCEL=(-accel tcg,thread=multi -cpu max)
BIOS=()
[ -f /usr/share/qemu/qboot.rom ] && BIOS=(-bios /usr/share/qemu/qboot.rom)
say "booting $KREL (TCG, $CPUS CPUs, $MEM)"
timeout -k 10 $((GUEST_TIMEOUT + 120)) qemu-system-x86_64 "${ACCEL[@]}" "${BIOS[@]}" -m "$MEM" -smp "$CPUS" \
  -nographic -no-reboot -nic none -kernel "$KERNEL" -initrd "$INITRD" \
  -append "console=ttyS0 quiet panic=-1 mitigations=off rbcc.w=$W rbcc.out=$O rbcc.timeout=$GUEST_TIMEOUT" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs local,path="$W",mount_tag=work,security_model=none,multidevs=remap \
  < /dev/null | sed -u 's/\r$//; s/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' || true
if [ ! -s "$O/rc" ]; then
  say "the VM on $KREL did not finish the command"
  exit 125
fi
exit "$(cat "$O/rc")"
