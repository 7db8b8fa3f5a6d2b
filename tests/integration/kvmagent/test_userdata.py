"""Metadata and user data through a real kvmagent on a simulated host: the metadata
server runs in the L3's DHCP namespace; "VMs" are namespaces (devcluster.vmnic) that
fetch from 169.254.169.254 with python's urllib, run inside them."""

from __future__ import annotations

import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from agentlib.receiver import CallbackReceiver
from kvmagent.models.userdata import MAX_USERDATA_BYTES
from tests.fixtures.dhcp import DATA_BRIDGE
from tests.fixtures.kvm import KvmHost

pytestmark = pytest.mark.integration

L3 = uuid.uuid4().hex
NS = f"{DATA_BRIDGE}_{L3}"
SERVER, NETMASK = "10.43.0.2", "255.255.255.0"
MAC1, MAC2 = "52:54:00:43:00:01", "52:54:00:43:00:02"
IP1, IP2 = "10.43.0.11", "10.43.0.12"
VM1, VM2 = uuid.uuid4().hex, uuid.uuid4().hex
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0zfleetzfleetzfleetzfleetzfleetzfleetzf u@zfleet"

FETCH = """
import sys, urllib.error, urllib.request
url, method, token = sys.argv[1], sys.argv[2], sys.argv[3]
headers = {"X-aws-ec2-metadata-token": token} if token else {}
req = urllib.request.Request(url, method=method, headers=headers)
try:
    with urllib.request.urlopen(req, timeout=float(sys.argv[4])) as r:
        print(r.status); sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)
except OSError as e:
    print("unreachable", e)
"""


def fetch(nic, path, method="GET", token="", timeout=3.0, server="169.254.169.254"
          ) -> tuple[str, str]:
    """(status or 'unreachable', body) of a request from inside the VM NIC's namespace."""
    res = nic.host.run(["ip", "netns", "exec", nic.netns, sys.executable, "-c", FETCH,
                        f"http://{server}{path}", method, token, str(timeout)],
                       timeout=timeout + 10)
    status, _, body = res.stdout.partition("\n")
    return status.split()[0], body


def vm_nic(host, name, mac, ip):
    """A VM NIC configured as its guest would be after DHCP: its address, and the
    metadata address on-link (cloud-init's guests reach it via the gateway, which the
    dnat rule makes work the same way)."""
    nic = host.nic(name, mac)
    set_ip(nic, ip)
    return nic


def set_ip(nic, ip):
    run = nic.host.run
    run(["ip", "-n", nic.netns, "addr", "flush", "dev", "eth0"])
    run(["ip", "-n", nic.netns, "addr", "add", f"{ip}/24", "dev", "eth0"])
    run(["ip", "-n", nic.netns, "route", "replace", "169.254.169.254/32", "dev", "eth0"])
    run(["ip", "-n", nic.netns, "neigh", "flush", "dev", "eth0"])


def userdata(ip, vm, hostname, data=None, key=None):
    to = {"bridgeName": DATA_BRIDGE, "namespaceName": NS, "vmIp": ip, "dhcpServerIp": SERVER,
          "port": 80, "metadata": {"vmUuid": vm, "vmHostname": hostname}}
    if data is not None:
        to["userdata"] = data
    if key:
        to["sshKey"] = key
    return to


@pytest.fixture
def host(dhcp_host_factory):
    h = dhcp_host_factory()
    h.call("/flatnetworkprovider/dhcp/prepare", {
        "bridgeName": DATA_BRIDGE, "namespaceName": NS, "dhcpServerIp": SERVER,
        "dhcpNetmask": NETMASK})
    h.call("/flatnetworkprovider/dhcp/apply", {"dhcp": [
        {"namespaceName": NS, "bridgeName": DATA_BRIDGE, "mac": mac, "ip": ip,
         "netmask": NETMASK} for mac, ip in ((MAC1, IP1), (MAC2, IP2))]})
    return h


def test_vm_reads_its_own_metadata_and_never_anothers(host):
    reply = host.call("/flatnetworkprovider/userdata/batchapply", {"userdata": [
        userdata(IP1, VM1, "vm1", "#cloud-config\nsecret: one\n", KEY),
        userdata(IP2, VM2, "vm2", "#cloud-config\nsecret: two\n")]})
    pid = reply["serverPids"][NS]
    nic1, nic2 = vm_nic(host, "u1", MAC1, IP1), vm_nic(host, "u2", MAC2, IP2)

    # what cloud-init 22.4 asks, in its order, with an IMDSv2 token
    status, token = fetch(nic1, "/latest/api/token", "PUT")
    assert status == "200" and token
    assert fetch(nic1, "/2009-04-04/meta-data/instance-id", token=token) == ("200", VM1)
    for version in ("2021-03-23", "2018-09-24", "2016-09-02", "2009-04-04", "latest"):
        assert fetch(nic1, f"/{version}/meta-data/") == (
            "200", "instance-id\nlocal-hostname\nlocal-ipv4\npublic-keys/")
    assert fetch(nic1, "/2021-03-23/meta-data/local-hostname") == ("200", "vm1")
    assert fetch(nic1, "/2021-03-23/meta-data/local-ipv4") == ("200", IP1)
    assert fetch(nic1, "/2021-03-23/meta-data/public-keys/") == ("200", "0=u@zfleet")
    assert fetch(nic1, "/2021-03-23/meta-data/public-keys/0/") == ("200", "openssh-key")
    assert fetch(nic1, "/latest/meta-data/public-keys/0/openssh-key") == ("200", KEY + "\n")
    assert fetch(nic1, "/2021-03-23/user-data", token=token) == (
        "200", "#cloud-config\nsecret: one\n")
    assert fetch(nic2, "/latest/user-data") == ("200", "#cloud-config\nsecret: two\n")
    assert fetch(nic2, "/latest/meta-data/")[1] == "instance-id\nlocal-hostname\nlocal-ipv4"
    assert fetch(nic2, "/latest/meta-data/public-keys/")[0] == "404"
    # ZStack 1.0's CloudStack-style datasource: the same tree at the DHCP server's address
    assert fetch(nic1, "/latest/user-data", server=SERVER) == (
        "200", "#cloud-config\nsecret: one\n")

    # vm2 claims vm1's address: dropped on the host, no answer at all
    set_ip(nic2, IP1)
    for server in ("169.254.169.254", SERVER):
        assert fetch(nic2, "/latest/user-data", timeout=2, server=server)[0] == "unreachable"
    assert fetch(nic1, "/latest/user-data") == ("200", "#cloud-config\nsecret: one\n")
    # the rules are what refuses it: without them vm2 reads vm1's user data
    chain = [r.split()[-1] for r in host.ebtables().splitlines()
             if r.startswith("-A FORWARD -j ZM-")][0]
    host.host.run(["ebtables", "-D", "FORWARD", "-j", chain])
    assert fetch(nic2, "/latest/user-data") == ("200", "#cloud-config\nsecret: one\n")
    host.call("/flatnetworkprovider/userdata/apply",  # repairs the rules, same server
              {"userdata": userdata(IP2, VM2, "vm2", "#cloud-config\nsecret: two\n")})
    assert f"-A FORWARD -j {chain}" in host.ebtables()
    set_ip(nic2, IP2)
    host.host.run(["ip", "-n", NS, "neigh", "flush", "all"])  # forget vm2's claim
    assert fetch(nic1, "/latest/user-data") == ("200", "#cloud-config\nsecret: one\n")
    assert fetch(nic2, "/latest/meta-data/instance-id") == ("200", VM2)

    # release: 404 for that VM only; a restarted agent keeps the same server
    host.call("/flatnetworkprovider/userdata/release", {
        "bridgeName": DATA_BRIDGE, "namespaceName": NS, "vmIp": IP2})
    assert fetch(nic2, "/latest/meta-data/instance-id")[0] == "404"
    host.restart_agent()
    assert host.dnsmasq(NS).pid() is not None
    assert psutil.pid_exists(pid)
    assert fetch(nic1, "/latest/meta-data/instance-id") == ("200", VM1)
    reply = host.call("/flatnetworkprovider/userdata/apply",
                      {"userdata": userdata(IP2, VM2, "vm2")})
    assert reply["serverPids"][NS] == pid
    assert fetch(nic2, "/latest/user-data")[0] == "404"  # no user data: 404, as EC2

    # cleanup: server, address and rules gone
    host.call("/flatnetworkprovider/userdata/cleanup", {"bridgeName": DATA_BRIDGE,
                                                        "namespaceName": NS})
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert "169.254.169.254" not in host.ebtables()
    assert fetch(nic1, "/latest/meta-data/instance-id", timeout=2)[0] == "unreachable"


def test_vms_applied_at_once_are_all_served_and_a_refused_one_fails_alone(host):
    """Single-VM applies that arrive together for one namespace are done together
    (agentlib/groupcommit.py): every lease and every VM's metadata is in place, bound
    by its rules, and the one VM without a DHCP entry is refused on its own."""
    vms = [(f"52:54:00:43:01:{i:02x}", f"10.43.0.{100 + i}", uuid.uuid4().hex)
           for i in range(24)]
    with ThreadPoolExecutor(len(vms) + 1) as pool:
        replies = list(pool.map(lambda v: host.post("/flatnetworkprovider/dhcp/apply", {
            "dhcp": [{"namespaceName": NS, "bridgeName": DATA_BRIDGE, "mac": v[0],
                      "ip": v[1], "netmask": NETMASK}]}).json(), vms))
        assert all(r["success"] for r in replies), replies
        leases = {lease.mac: lease.ip for lease in host.dnsmasq(NS).read_hosts()}
        assert {mac: leases.get(mac) for mac, _, _ in vms} == {mac: ip for mac, ip, _ in vms}
        bodies = [userdata(ip, vm, f"vm{i}", f"data {i}") for i, (_, ip, vm) in enumerate(vms)]
        bodies.append(userdata("10.43.0.250", uuid.uuid4().hex, "stranger", "x"))
        *good, bad = pool.map(lambda b: host.post("/flatnetworkprovider/userdata/apply",
                                                  {"userdata": b}).json(), bodies)
    assert all(r["success"] for r in good), good
    assert len({r["serverPids"][NS] for r in good}) == 1
    assert not bad["success"] and "vmIp" in bad["error"], bad
    served = {p.stem for p in (host.data_dir / "metadata" / NS / "vms").glob("*.json")}
    assert served == {ip for _, ip, _ in vms}
    rules = host.ebtables()
    assert all(f"--ip-src {ip} -j DROP" in rules for _, ip, _ in vms), rules
    mac, ip, vm = vms[-1]
    nic = vm_nic(host, "u9", mac, ip)
    assert fetch(nic, "/latest/meta-data/instance-id") == ("200", vm)
    assert fetch(nic, "/latest/user-data") == ("200", f"data {len(vms) - 1}")


def test_bad_input_is_refused_naming_the_field(host):
    big = "x" * (MAX_USERDATA_BYTES + 1)
    reply = host.post("/flatnetworkprovider/userdata/apply",
                      {"userdata": userdata(IP1, VM1, "vm1", big)})
    assert reply.status_code == 400 and "userdata" in reply.text, reply.text
    reply = host.post("/flatnetworkprovider/userdata/apply",
                      {"userdata": userdata("10.43.0.77", VM1, "vm1", "x")})
    assert not reply.json()["success"] and "vmIp" in reply.text, reply.text
    reply = host.post("/flatnetworkprovider/userdata/batchapply", {"userdata": [
        userdata(IP1, VM1, "vm1", "x"), {**userdata(IP2, VM2, "vm2"), "bridgeName": "br0"}]})
    assert not reply.json()["success"] and "userdata.1.bridgeName" in reply.text, reply.text
    assert not (host.data_dir / "metadata" / NS / "vms").exists() or not any(
        (host.data_dir / "metadata" / NS / "vms").iterdir())


def test_deleting_the_dhcp_namespace_takes_its_metadata_server_along(host):
    """deletenamespace leaves no metadata server, rule or file behind; after prepare
    again, the next apply serves the VM from a new server in the new namespace."""
    pid = host.call("/flatnetworkprovider/userdata/apply", {
        "userdata": userdata(IP1, VM1, "vm1", "one")})["serverPids"][NS]
    host.call("/flatnetworkprovider/dhcp/deletenamespace", {"namespaceName": NS})
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert "169.254.169.254" not in host.ebtables()
    assert not (host.data_dir / "metadata" / NS).exists()
    host.call("/flatnetworkprovider/dhcp/prepare", {
        "bridgeName": DATA_BRIDGE, "namespaceName": NS, "dhcpServerIp": SERVER,
        "dhcpNetmask": NETMASK})
    host.call("/flatnetworkprovider/dhcp/apply", {"dhcp": [
        {"namespaceName": NS, "bridgeName": DATA_BRIDGE, "mac": MAC1, "ip": IP1,
         "netmask": NETMASK}]})
    new = host.call("/flatnetworkprovider/userdata/apply", {
        "userdata": userdata(IP1, VM1, "vm1", "one")})["serverPids"][NS]
    assert new != pid
    assert fetch(vm_nic(host, "u1", MAC1, IP1), "/latest/user-data") == ("200", "one")
    host.call("/flatnetworkprovider/userdata/cleanup", {"namespaceName": NS})
    assert not psutil.pid_exists(new)


def test_a_qemu_guest_reads_its_metadata_via_its_gateway(dhcp_host_factory, host_network,
                                                         guest_image):
    """The guest routes 169.254.169.254 via its gateway (a namespace here that only
    answers ARP): the host's dnat rule delivers it to the DHCP namespace."""
    a = dhcp_host_factory(libvirt=True)
    a.call("/flatnetworkprovider/dhcp/prepare", {
        "bridgeName": DATA_BRIDGE, "namespaceName": NS, "dhcpServerIp": SERVER,
        "dhcpNetmask": NETMASK})
    vm_nic(a, "gw", "52:54:00:43:00:fe", "10.43.0.1")
    receiver = CallbackReceiver(host=host_network.root_ip.split("/")[0]).start()
    try:
        kvm = KvmHost(a.host, None, receiver, guest_image, uuid.uuid4().hex)
        kvm.call("/host/connect", {"hostUuid": kvm.host_uuid, "sendCommandUrl": receiver.url})
        cmd = kvm.start_cmd()
        vm, mac = cmd["vmInstanceUuid"], cmd["nics"][0]["mac"]
        cmd["nics"][0]["bridgeName"] = DATA_BRIDGE
        a.call("/flatnetworkprovider/dhcp/apply", {"dhcp": [
            {"namespaceName": NS, "bridgeName": DATA_BRIDGE, "mac": mac, "ip": "10.43.0.77",
             "netmask": NETMASK, "gateway": "10.43.0.1", "hostname": "guest"}]})
        a.call("/flatnetworkprovider/userdata/apply", {"userdata": {
            **userdata("10.43.0.77", vm, "guest", "#cloud-config\nhello: guest\n", KEY)}})
        started = time.monotonic()
        assert kvm.call_async("/vm/start", cmd)["success"]
        report = kvm.wait_console(vm, lambda r: r.ready and r, "guest ready")
        print(f"guest start -> metadata read {time.monotonic() - started:.1f}s")
        assert report.metadata_errors == {}, kvm.console_text(vm)
        assert report.metadata == {"instance-id": vm, "local-hostname": "guest",
                                   "local-ipv4": "10.43.0.77",
                                   "user-data": "#cloud-config\nhello: guest\n"}
        assert kvm.call_async("/vm/destroy", {"uuid": vm})["success"]
    finally:
        receiver.stop()
