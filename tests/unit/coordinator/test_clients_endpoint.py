"""Endpoint bodies: built from snake_case fields into the agent's camelCase, a key the
command does not have refused naming it (at any depth), ``None`` left out, a value the
agent would refuse said the way the agent says it; replies parsed into the reply model."""

import pytest

from agentlib.models import AgentReply
from coordinator.agentclient import AgentCallError
from coordinator.clients import kvmagent, sftpbsagent
from coordinator.clients.endpoint import InvalidCommand, UnknownField, ignored
from kvmagent.models.vm import VolumeTO

NS, VM = "br_eth0_" + "9" * 32, "2" * 32
ENTRY = {"namespaceName": NS, "bridgeName": "br_eth0", "mac": "fa:16:3e:00:00:01",
         "ip": "10.77.0.10", "netmask": "255.255.255.0"}


def test_snake_case_fields_go_out_in_camel_case_with_nested_models_or_dicts():
    volume = VolumeTO(volume_uuid="6" * 32, install_path="/ps/v.qcow2", device_id=1)
    call = kvmagent.ATTACH_DATA_VOLUME.call(vm_uuid=VM, volume=volume)
    assert call.path == "/vm/attachdatavolume" and call.is_async
    assert call.body["vmUuid"] == VM
    assert call.body["volume"]["installPath"] == "/ps/v.qcow2"
    assert kvmagent.APPLY_DHCP.call(dhcp=[ENTRY]).body["dhcp"][0]["bridgeName"] == "br_eth0"


def test_an_unknown_field_is_refused_naming_it_and_the_fields_there_are():
    with pytest.raises(UnknownField) as exc:
        kvmagent.RELEASE_USERDATA.call(namespace_name=NS, vm_ip="10.77.0.10",
                                       vm_mac="fa:16:3e:00:00:01")
    assert str(exc.value) == ("/flatnetworkprovider/userdata/release: ReleaseUserdataCmd has "
                              "no field 'vm_mac' (its fields: bridge_name, namespace_name, "
                              "vm_ip)")
    with pytest.raises(UnknownField, match=r"EmptyCommand has no field 'hostUuid' \(its "
                                           r"fields: none\)"):
        kvmagent.PING.call(hostUuid="1" * 32)


def test_an_unknown_nested_field_is_refused_with_where_it_is():
    with pytest.raises(UnknownField, match=r"ApplyDhcpCmd has no field 'dhcp\.1\.isDefault'"):
        kvmagent.APPLY_DHCP.call(dhcp=[ENTRY, {**ENTRY, "mac": "fa:16:3e:00:00:02",
                                               "isDefault": False}])
    with pytest.raises(UnknownField, match=r"'userdata\.metadata\.hostname'"):
        kvmagent.APPLY_USERDATA.call(userdata={
            "bridgeName": "br_eth0", "namespaceName": NS, "vmIp": "10.77.0.10",
            "metadata": {"vmUuid": VM, "hostname": "vm-1"}})


def test_none_optionals_are_not_sent():
    body = kvmagent.SFTP_DOWNLOAD.call(
        hostname="10.99.0.5", backup_storage_install_path="/bs/i.template",
        primary_storage_install_path="/ps/imagecache/i.qcow2", image_uuid=None,
        md5_sum=None, actual_size=None).body
    assert not {"imageUuid", "md5Sum", "actualSize"} & body.keys()
    assert body["username"] == "root"  # a default that is not None is sent
    nested = kvmagent.APPLY_USERDATA.call(userdata={
        "bridgeName": "br_eth0", "namespaceName": NS, "vmIp": "10.77.0.10",
        "userdata": None, "sshKey": None, "metadata": {"vmUuid": VM}}).body["userdata"]
    assert not {"userdata", "sshKey", "vmMac", "dhcpServerIp"} & nested.keys()


def test_a_value_the_agent_would_refuse_is_said_as_the_agent_says_it():
    with pytest.raises(InvalidCommand) as exc:
        kvmagent.CONNECT.call(host_uuid="../etc")
    assert str(exc.value) == ("/host/connect: hostUuid: not a valid uuid: '../etc'; "
                              "sendCommandUrl: Field required")
    assert isinstance(exc.value, AgentCallError) and not exc.value.unreachable


def test_zstack_alias_choices_are_fields_not_ignored_keys():
    """sftpbsagent's delete reads installUrl or ZStack's installPath: either is a field."""
    for key in ("install_url", "installUrl", "installPath"):
        assert sftpbsagent.DELETE.call(**{key: "/bs/i.template"}).body == {
            "installUrl": "/bs/i.template"}
    cmd = sftpbsagent.DELETE.command.model_validate({"installPath": "/bs/i"})
    assert ignored(cmd, {"installPath": "/bs/i", "url": "x"}) == ["url"]


def test_replies_are_parsed_into_the_reply_model():
    reply = kvmagent.GET_VNC_PORT.parse({"success": True, "error": "", "port": 5900,
                                         "protocol": "vnc", "hostIp": "10.99.0.11"})
    assert (reply.port, reply.protocol, reply.host_ip) == (5900, "vnc", "10.99.0.11")
    assert isinstance(kvmagent.CONNECT.parse({"success": True}), AgentReply)
    with pytest.raises(AgentCallError, match=r"^/vm/getvncport: the reply is not a "
                                             r"GetVncPortReply: protocol: Field required"):
        kvmagent.GET_VNC_PORT.parse({"success": True, "port": 5900, "hostIp": "x"})
