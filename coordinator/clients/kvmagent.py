"""kvmagent, the agent on each KVM host: every endpoint the coordinator calls.

The module-level endpoints also build the commands kept as GC jobs while the host is
unreachable (``DESTROY_VM.call(uuid=...)`` -> path and body).
"""

from __future__ import annotations

from typing import Any

from agentlib.models import AgentReply, AuthorizeKeyCmd, AuthorizeKeyReply, EmptyCommand
from coordinator.agentclient import AgentClient
from coordinator.clients.endpoint import Endpoint
from coordinator.clients.transport import AgentAt, Client
from kvmagent.models import (
    ceph_secret,
    dhcp,
    eip,
    ha,
    host,
    hotplug,
    l2,
    migrate,
    sftp_image,
    storage,
    userdata,
    vm,
    volume_migrate,
)

# host
CONNECT = Endpoint("/host/connect", host.ConnectCmd, AgentReply)
CAPACITY = Endpoint("/host/capacity", EmptyCommand, host.CapacityReply)
FACT = Endpoint("/host/fact", EmptyCommand, host.FactReply)
PING = Endpoint("/host/ping", EmptyCommand, host.PingReply)
VM_SYNC = Endpoint("/vm/vmsync", EmptyCommand, vm.VmSyncReply)
# VMs
START_VM = Endpoint("/vm/start", vm.StartVmCmd, vm.StartVmReply, is_async=True)
STOP_VM = Endpoint("/vm/stop", vm.VmCmd, vm.VmStateReply, is_async=True)
DESTROY_VM = Endpoint("/vm/destroy", vm.VmCmd, vm.VmStateReply, is_async=True)
REBOOT_VM = Endpoint("/vm/reboot", vm.VmCmd, vm.VmStateReply, is_async=True)
MIGRATE_VM = Endpoint("/vm/migrate", migrate.MigrateVmCmd, AgentReply, is_async=True)
GET_VNC_PORT = Endpoint("/vm/getvncport", vm.GetVncPortCmd, vm.GetVncPortReply)
ATTACH_DATA_VOLUME = Endpoint("/vm/attachdatavolume", hotplug.VolumeDeviceCmd,
                              hotplug.DeviceReply, is_async=True)
DETACH_DATA_VOLUME = Endpoint("/vm/detachdatavolume", hotplug.VolumeDeviceCmd,
                              hotplug.DeviceReply, is_async=True)
ATTACH_ISO = Endpoint("/vm/iso/attach", hotplug.AttachIsoCmd, hotplug.DeviceReply,
                      is_async=True)
DETACH_ISO = Endpoint("/vm/iso/detach", hotplug.DetachIsoCmd, hotplug.DeviceReply,
                      is_async=True)
CREATE_CEPH_SECRET = Endpoint("/vm/createcephsecret", ceph_secret.CreateCephSecretCmd,
                              AgentReply)
# local storage
INIT_LOCAL_STORAGE = Endpoint("/localstorage/init", storage.LocalStorageInitCmd,
                              storage.CapacityReply)
SSH_KEY = Endpoint("/localstorage/sshkey", EmptyCommand, volume_migrate.SshKeyReply)
AUTHORIZE_KEY = Endpoint("/localstorage/authorizekey", AuthorizeKeyCmd, AuthorizeKeyReply)
SFTP_DOWNLOAD = Endpoint("/localstorage/sftp/download", sftp_image.SftpDownloadCmd,
                         sftp_image.SftpImageReply, is_async=True)
CREATE_VOLUME_FROM_CACHE = Endpoint("/localstorage/volume/createvolumefromcache",
                                    storage.CreateVolumeFromCacheCmd, storage.CapacityReply)
DELETE_BITS = Endpoint("/localstorage/delete", storage.DeleteBitsCmd, storage.CapacityReply)
MIGRATE_VOLUME = Endpoint("/localstorage/volume/migrate", volume_migrate.MigrateVolumeCmd,
                          volume_migrate.MigrateVolumeReply, is_async=True)
# L2
CREATE_BRIDGE = Endpoint("/network/l2novlan/createbridge", l2.CreateBridgeCmd, AgentReply)
CREATE_VLAN_BRIDGE = Endpoint("/network/l2vlan/createbridge", l2.CreateVlanBridgeCmd,
                              AgentReply)
# flat network provider: DHCP, user data, EIP
PREPARE_DHCP = Endpoint("/flatnetworkprovider/dhcp/prepare", dhcp.PrepareDhcpCmd,
                        dhcp.PrepareDhcpReply)
APPLY_DHCP = Endpoint("/flatnetworkprovider/dhcp/apply", dhcp.ApplyDhcpCmd, dhcp.DhcpReply)
RELEASE_DHCP = Endpoint("/flatnetworkprovider/dhcp/release", dhcp.ReleaseDhcpCmd,
                        dhcp.DhcpReply)
APPLY_USERDATA = Endpoint("/flatnetworkprovider/userdata/apply", userdata.ApplyUserdataCmd,
                          userdata.UserdataReply)
RELEASE_USERDATA = Endpoint("/flatnetworkprovider/userdata/release",
                            userdata.ReleaseUserdataCmd, userdata.UserdataReply)
APPLY_EIP = Endpoint("/flatnetworkprovider/eip/apply", eip.ApplyEipCmd, eip.EipReply)
DELETE_EIP = Endpoint("/flatnetworkprovider/eip/delete", eip.DeleteEipCmd, eip.EipReply)
BATCH_DELETE_EIPS = Endpoint("/flatnetworkprovider/eip/batchdelete", eip.BatchDeleteEipCmd,
                             eip.EipReply)
# VM HA
SETUP_SELF_FENCER = Endpoint("/ha/selffencer/setup", ha.SelfFencerSetupCmd,
                             ha.SelfFencerSetupReply)
CANCEL_SELF_FENCER = Endpoint("/ha/selffencer/cancel", ha.SelfFencerCancelCmd, AgentReply)
SCAN_HOST = Endpoint("/ha/scanhost", ha.ScanHostCmd, ha.ScanHostReply, is_async=True)


class KvmAgent(Client):
    """The kvmagent of one host."""

    @classmethod
    def at(cls, agents: AgentClient, url: str) -> KvmAgent:
        return cls(AgentAt(agents, url))

    # -- host --------------------------------------------------------------------------

    def connect(self, *, wait: float | None = None, **fields: Any) -> AgentReply:
        return self.send(CONNECT, fields, wait)

    def capacity(self, *, wait: float | None = None) -> host.CapacityReply:
        return self.send(CAPACITY, {}, wait)

    def fact(self, *, wait: float | None = None) -> host.FactReply:
        return self.send(FACT, {}, wait)

    def ping(self, *, wait: float | None = None) -> host.PingReply:
        return self.send(PING, {}, wait)

    def vm_sync(self, *, wait: float | None = None) -> vm.VmSyncReply:
        return self.send(VM_SYNC, {}, wait)

    # -- VMs ---------------------------------------------------------------------------

    def start_vm(self, *, wait: float, **fields: Any) -> vm.StartVmReply:
        return self.send(START_VM, fields, wait)

    def stop_vm(self, *, wait: float, **fields: Any) -> vm.VmStateReply:
        return self.send(STOP_VM, fields, wait)

    def destroy_vm(self, *, wait: float, **fields: Any) -> vm.VmStateReply:
        return self.send(DESTROY_VM, fields, wait)

    def reboot_vm(self, *, wait: float, **fields: Any) -> vm.VmStateReply:
        return self.send(REBOOT_VM, fields, wait)

    def migrate_vm(self, *, wait: float, **fields: Any) -> AgentReply:
        return self.send(MIGRATE_VM, fields, wait)

    def get_vnc_port(self, *, wait: float | None = None, **fields: Any) -> vm.GetVncPortReply:
        return self.send(GET_VNC_PORT, fields, wait)

    def attach_data_volume(self, *, wait: float, **fields: Any) -> hotplug.DeviceReply:
        return self.send(ATTACH_DATA_VOLUME, fields, wait)

    def detach_data_volume(self, *, wait: float, **fields: Any) -> hotplug.DeviceReply:
        return self.send(DETACH_DATA_VOLUME, fields, wait)

    def attach_iso(self, *, wait: float, **fields: Any) -> hotplug.DeviceReply:
        return self.send(ATTACH_ISO, fields, wait)

    def detach_iso(self, *, wait: float, **fields: Any) -> hotplug.DeviceReply:
        return self.send(DETACH_ISO, fields, wait)

    def create_ceph_secret(self, *, wait: float | None = None, **fields: Any) -> AgentReply:
        return self.send(CREATE_CEPH_SECRET, fields, wait)

    # -- local storage -----------------------------------------------------------------

    def init_local_storage(self, *, wait: float | None = None,
                           **fields: Any) -> storage.CapacityReply:
        return self.send(INIT_LOCAL_STORAGE, fields, wait)

    def ssh_key(self, *, wait: float | None = None) -> volume_migrate.SshKeyReply:
        return self.send(SSH_KEY, {}, wait)

    def authorize_key(self, *, wait: float | None = None, **fields: Any) -> AuthorizeKeyReply:
        return self.send(AUTHORIZE_KEY, fields, wait)

    def sftp_download(self, *, wait: float, **fields: Any) -> sftp_image.SftpImageReply:
        return self.send(SFTP_DOWNLOAD, fields, wait)

    def create_volume_from_cache(self, *, wait: float | None = None,
                                 **fields: Any) -> storage.CapacityReply:
        return self.send(CREATE_VOLUME_FROM_CACHE, fields, wait)

    def delete_bits(self, *, wait: float | None = None, **fields: Any) -> storage.CapacityReply:
        return self.send(DELETE_BITS, fields, wait)

    def migrate_volume(self, *, wait: float,
                       **fields: Any) -> volume_migrate.MigrateVolumeReply:
        return self.send(MIGRATE_VOLUME, fields, wait)

    # -- L2 ----------------------------------------------------------------------------

    def create_bridge(self, *, wait: float | None = None, **fields: Any) -> AgentReply:
        return self.send(CREATE_BRIDGE, fields, wait)

    def create_vlan_bridge(self, *, wait: float | None = None, **fields: Any) -> AgentReply:
        return self.send(CREATE_VLAN_BRIDGE, fields, wait)

    # -- flat network provider ---------------------------------------------------------

    def prepare_dhcp(self, *, wait: float | None = None,
                     **fields: Any) -> dhcp.PrepareDhcpReply:
        return self.send(PREPARE_DHCP, fields, wait)

    def apply_dhcp(self, *, wait: float | None = None, **fields: Any) -> dhcp.DhcpReply:
        return self.send(APPLY_DHCP, fields, wait)

    def release_dhcp(self, *, wait: float | None = None, **fields: Any) -> dhcp.DhcpReply:
        return self.send(RELEASE_DHCP, fields, wait)

    def apply_userdata(self, *, wait: float | None = None,
                       **fields: Any) -> userdata.UserdataReply:
        return self.send(APPLY_USERDATA, fields, wait)

    def release_userdata(self, *, wait: float | None = None,
                         **fields: Any) -> userdata.UserdataReply:
        return self.send(RELEASE_USERDATA, fields, wait)

    def apply_eip(self, *, wait: float | None = None, **fields: Any) -> eip.EipReply:
        return self.send(APPLY_EIP, fields, wait)

    def delete_eip(self, *, wait: float | None = None, **fields: Any) -> eip.EipReply:
        return self.send(DELETE_EIP, fields, wait)

    def batch_delete_eips(self, *, wait: float | None = None, **fields: Any) -> eip.EipReply:
        return self.send(BATCH_DELETE_EIPS, fields, wait)

    # -- VM HA -------------------------------------------------------------------------

    def setup_self_fencer(self, *, wait: float | None = None,
                          **fields: Any) -> ha.SelfFencerSetupReply:
        return self.send(SETUP_SELF_FENCER, fields, wait)

    def cancel_self_fencer(self, *, wait: float | None = None, **fields: Any) -> AgentReply:
        return self.send(CANCEL_SELF_FENCER, fields, wait)

    def scan_host(self, *, wait: float, **fields: Any) -> ha.ScanHostReply:
        return self.send(SCAN_HOST, fields, wait)
