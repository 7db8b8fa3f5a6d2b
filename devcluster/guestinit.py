"""The test guest's own programs: /init, the udhcpc event script, the power-button handler.

They are busybox ``sh`` scripts that run inside the guest only. They report everything a
test needs on the serial console in the formats of devcluster.guestconsole, so a test
can see that a VM really booted, got its DHCP lease and metadata, saw a hot-plugged
disk or NIC, and powered off on an ACPI shutdown.

busybox-static's ``wget`` segfaults, so HTTP to the metadata service is a hand-written
HTTP/1.0 request through ``nc``.
"""

from __future__ import annotations

import re

from devcluster import guestconsole as c

METADATA_IP = "169.254.169.254"
# cloud-init's Ec2 datasource probes this dated version first; the service must serve it.
METADATA_PREFIX = "/2009-04-04"
METADATA_KEYS = ("instance-id", "local-hostname", "local-ipv4")

UDHCPC_SCRIPT = "/etc/udhcpc.sh"
MODULE_LIST = "/etc/modules.load"  # module file names in load order, one per line
POWER_HANDLER = "/etc/acpi/PWRF/00000080"  # busybox acpid's built-in action for KEY_POWER

_INIT = r"""#!/bin/sh
# PID 1 of the zfleet test guest. Never exits (that would panic the kernel).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /run /tmp /var/log

say() { echo "$*" > /dev/console; }

while read -r m; do insmod "/lib/modules/$m"; done < @MODULE_LIST@
ip link set lo up
acpid -l /run/acpid.log

disks="" nics=""
scan() {
	now_disks="" now_nics=""
	for p in /sys/block/vd* /sys/block/sd*; do
		[ -e "$p" ] && now_disks="$now_disks ${p##*/}"
	done
	for p in /sys/class/net/eth*; do
		[ -e "$p" ] && now_nics="$now_nics ${p##*/}"
	done
}

# report_disks TAG: TAG for new disks, RESIZE for changed sizes, UNPLUG for gone ones.
report_disks() {
	for d in $now_disks; do
		s=0
		read -r s < "/sys/block/$d/size"
		s=$((s * 512))
		case " $disks " in
		*" $d "*) eval old=\$size_$d; [ "$old" = "$s" ] || say "@RESIZE@ disk=$d size=$s" ;;
		*) say "$1 disk=$d size=$s" ;;
		esac
		eval size_$d=$s
	done
	for d in $disks; do
		case " $now_disks " in *" $d "*) ;; *) say "@UNPLUG@ disk=$d" ;; esac
	done
	disks=$now_disks
}

dhcp() {
	udhcpc -b -t 10 -T 1 -A 2 -O staticroutes -i "$1" -s @UDHCPC_SCRIPT@ \
		-p "/run/udhcpc.$1.pid" > /dev/null 2>&1
}

# report_nics TAG: TAG for new NICs (and start DHCP on them), UNPLUG for gone ones.
report_nics() {
	for n in $now_nics; do
		case " $nics " in
		*" $n "*) ;;
		*)
			mac=""
			read -r mac < "/sys/class/net/$n/address"
			say "$1 nic=$n mac=$mac"
			if [ "$1" = @HOTPLUG@ ]; then dhcp "$n" & fi
			;;
		esac
	done
	for n in $nics; do
		case " $now_nics " in
		*" $n "*) ;;
		*)
			say "@UNPLUG@ nic=$n"
			[ -f "/run/udhcpc.$n.pid" ] && kill "$(cat "/run/udhcpc.$n.pid")"
			;;
		esac
	done
	nics=$now_nics
}

# http_get PATH: sets $status ("" if unreachable) and writes the body to /tmp/body.
http_get() {
	printf 'GET %s HTTP/1.0\r\nHost: @METADATA_IP@\r\n\r\n' "$1" \
		| timeout 5 nc -w 2 @METADATA_IP@ 80 > /tmp/resp 2> /dev/null
	status=$(awk 'NR == 1 { print $2; exit }' /tmp/resp)
	hdr=$(awk '{ n += length($0) + 1 } /^\r?$/ { print n; exit }' /tmp/resp)
	: > /tmp/body
	[ -n "$hdr" ] && tail -c +$((hdr + 1)) /tmp/resp > /tmp/body
}

fetch_metadata() {
	http_get "@METADATA_PREFIX@/meta-data/instance-id"
	if [ -z "$status" ]; then
		say "@METADATA_ERROR@ key=instance-id reason=unreachable"
		return
	fi
	for key in @METADATA_KEYS@; do
		[ "$key" = instance-id ] || http_get "@METADATA_PREFIX@/meta-data/$key"
		if [ "$status" = 200 ]; then
			v=""
			read -r v < /tmp/body
			say "@METADATA@ $key=$v"
		else
			say "@METADATA_ERROR@ key=$key reason=http-${status:-none}"
		fi
	done
	http_get "@METADATA_PREFIX@/user-data"
	if [ "$status" = 200 ]; then
		say "@METADATA@ @USER_DATA_B64@=$(base64 -w 0 /tmp/body)"
	else
		say "@METADATA_ERROR@ key=user-data reason=http-${status:-none}"
	fi
}

scan
report_disks @DISK@
report_nics @NIC@
for n in $nics; do dhcp "$n" & done
wait
fetch_metadata
say "@READY@"

while true; do
	sleep 0.5
	scan
	report_disks @HOTPLUG@
	report_nics @HOTPLUG@
done
"""

_UDHCPC = r"""#!/bin/sh
# udhcpc event script: configure the NIC and report the lease on the serial console.
say() { echo "$*" > /dev/console; }
case "$1" in
deconfig)
	ip link set "$interface" up
	ip -4 addr flush dev "$interface"
	;;
bound|renew)
	[ "$1" = bound ] && ip -4 addr flush dev "$interface"
	ip addr replace "$ip/$mask" dev "$interface"
	read -r ifindex < "/sys/class/net/$interface/ifindex"
	for r in $router; do
		ip route replace default via "$r" dev "$interface" metric "$ifindex"
		break
	done
	set -- $staticroutes
	while [ $# -ge 2 ]; do
		ip route replace "$1" via "$2" dev "$interface"
		shift 2
	done
	routers="" dnss=""
	for r in $router; do routers="${routers:+$routers,}$r"; done
	for d in $dns; do dnss="${dnss:+$dnss,}$d"; done
	[ -n "$dns" ] && for d in $dns; do echo "nameserver $d"; done > /etc/resolv.conf
	read -r mac < "/sys/class/net/$interface/address"
	say "@LEASE@ iface=$interface mac=$mac ip=$ip/$mask router=$routers dns=$dnss lease=$lease"
	;;
leasefail|nak)
	say "@LEASE_FAIL@ iface=$interface event=$1"
	;;
esac
"""

_POWER = r"""#!/bin/sh
# busybox acpid runs this when the ACPI power button is pressed (virsh shutdown).
echo "@POWEROFF@" > /dev/console
sync
poweroff -f
"""


def _render(template: str) -> str:
    values = {
        "MODULE_LIST": MODULE_LIST,
        "UDHCPC_SCRIPT": UDHCPC_SCRIPT,
        "METADATA_IP": METADATA_IP,
        "METADATA_PREFIX": METADATA_PREFIX,
        "METADATA_KEYS": " ".join(METADATA_KEYS),
        "USER_DATA_B64": c.USER_DATA_B64,
        "LEASE": c.LEASE,
        "LEASE_FAIL": c.LEASE_FAIL,
        "DISK": c.DISK,
        "NIC": c.NIC,
        "METADATA": c.METADATA,
        "METADATA_ERROR": c.METADATA_ERROR,
        "READY": c.READY,
        "HOTPLUG": c.HOTPLUG,
        "UNPLUG": c.UNPLUG,
        "RESIZE": c.RESIZE,
        "POWEROFF": c.POWEROFF,
    }
    return re.sub(r"@([A-Z_0-9]+)@", lambda m: values[m.group(1)], template)


def scripts() -> dict[str, str]:
    """Guest path -> content of every executable script the initramfs carries."""
    return {
        "/init": _render(_INIT),
        UDHCPC_SCRIPT: _render(_UDHCPC),
        POWER_HANDLER: _render(_POWER),
    }
