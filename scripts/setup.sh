#!/usr/bin/env bash
# Idempotent machine + venv setup for zfleet on Debian 12 as root.
# Installs only the Debian packages that are missing, builds .venv on Debian's
# python3.11 and exposes exactly Debian's rados/rbd/libvirt bindings to it.
# A second run with everything present takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(
  # VMs
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients
  qemu-system-x86 qemu-utils qemu-block-extra python3-libvirt
  # Ceph
  ceph-mon ceph-osd ceph-mgr ceph-common python3-rados python3-rbd
  # networking and guest tooling
  dnsmasq-base iptables ebtables iproute2 busybox-static cpio iputils-ping
  # the guest as a bootable disk image, made without mounting (devcluster/guestdisk.py)
  syslinux syslinux-common mtools dosfstools fdisk
  # benchmarks
  wrk
  # domain XML validation (virt-xml-validate needs xmllint)
  libxml2-utils
  # deployment
  openssh-server openssh-client
  # python
  python3 python3-venv
)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: Debian packages present"
fi

VENV=.venv
if [[ ! -x $VENV/bin/python ]]; then
  echo "setup: creating $VENV on /usr/bin/python3"
  /usr/bin/python3 -m venv "$VENV"
fi

# Expose Debian's C bindings (built for CPython 3.11; not on PyPI) and nothing
# else of dist-packages, by symlinking the modules into the venv.
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
for f in /usr/lib/python3/dist-packages/{rados,rbd}.cpython-311-*.so \
         /usr/lib/python3/dist-packages/libvirt*.py \
         /usr/lib/python3/dist-packages/libvirtmod*.so; do
  [[ -e $f ]] && ln -sfn "$f" "$site/$(basename "$f")"
done

stamp=$VENV/.zfleet-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "setup: installing zfleet (editable) with test and bench extras"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e '.[test,bench]'
  touch "$stamp"
else
  echo "setup: venv up to date"
fi
"$VENV/bin/python" -c 'import rados, rbd, libvirt, flask, pydantic' \
  && echo "setup: ok (rados, rbd, libvirt importable in $VENV)"
