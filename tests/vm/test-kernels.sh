#!/usr/bin/env bash
# Run one command as root in VMs on several Debian kernels at once (run-in-vm.sh on each), then say which
# passed; the exit status is 0 only when the command passed on every kernel.
#
#   tests/vm/test-kernels.sh CMD [ARG...]
#
# RBCC_VM_KERNELS: the linux-image-* packages to boot, space-separated. Default: the kernel
# linux-image-amd64 depends on (Debian 12's own, 6.1) and the newest build of 6.12 (the newer LTS kernel
# Debian 12 also ships), so each test runs on an older and a newer kernel.
# Each VM's output lines start with its kernel's series, e.g. "[6.12] ". The other RBCC_VM_* variables
# reach run-in-vm.sh. The VMs run side by side: under TCG a guest mostly keeps one host CPU busy.
set -uo pipefail

[ $# -gt 0 ] || { echo "usage: $0 CMD [ARG...]" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/kernels.sh"
vm_apt_lists
if [ -n "${RBCC_VM_KERNELS:-}" ]; then
  read -r -a kernels <<< "$RBCC_VM_KERNELS"
else
  kernels=("$(vm_default_kernel)" "$(vm_newest_kernel 6.12)")
fi
for k in "${kernels[@]}"; do
  [ -n "$k" ] || { echo "[kernels] a kernel package was not found in the apt lists (${kernels[*]})" >&2; exit 125; }
done

status_dir=$(mktemp -d)
trap 'rm -rf "$status_dir"' EXIT
start=$SECONDS
pids=()
for k in "${kernels[@]}"; do
  tag=$(echo "${k#linux-image-}" | grep -oE '^[0-9]+\.[0-9]+')
  echo "[kernels] $k: starting (its lines start with [$tag])"
  {
    RBCC_VM_KERNEL=$k "$HERE/run-in-vm.sh" "$@" 2>&1
    echo $? > "$status_dir/$k"
  } | sed -u "s/^/[$tag] /" &
  pids+=($!)
done
wait "${pids[@]}"

failed=0
for k in "${kernels[@]}"; do
  rc=$(cat "$status_dir/$k" 2>/dev/null || echo 125)
  if [ "$rc" = 0 ]; then
    echo "[kernels] $k: passed"
  else
    echo "[kernels] $k: FAILED (exit status $rc)"
    failed=1
  fi
done
echo "[kernels] ${#kernels[@]} kernels in $(( (SECONDS - start) / 60 ))m$(( (SECONDS - start) % 60 ))s"
exit $failed
