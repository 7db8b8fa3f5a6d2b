"""Schema migrations: (version, name, SQL), applied in order and recorded in
``schema_version``. Never edit a published migration; add the next one.

Conventions: every resource table has ``uuid`` (32 hex), ``name``, ``description``,
``created`` and ``updated`` (epoch seconds); lists and dicts live in ``<name>_json`` TEXT
columns (see :func:`coordinator.db.decode`). Association tables cascade with their ends.
"""

from __future__ import annotations

_V1 = """
CREATE TABLE zone (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    state TEXT NOT NULL DEFAULT 'Enabled', created REAL, updated REAL);
CREATE TABLE cluster (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    zone_uuid TEXT NOT NULL REFERENCES zone(uuid), hypervisor_type TEXT DEFAULT 'KVM',
    state TEXT NOT NULL DEFAULT 'Enabled', created REAL, updated REAL);
CREATE TABLE host (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    zone_uuid TEXT NOT NULL REFERENCES zone(uuid),
    cluster_uuid TEXT NOT NULL REFERENCES cluster(uuid),
    management_ip TEXT NOT NULL UNIQUE, agent_port INTEGER NOT NULL DEFAULT 7070,
    hypervisor_type TEXT DEFAULT 'KVM',
    state TEXT NOT NULL DEFAULT 'Enabled', status TEXT NOT NULL DEFAULT 'Connecting',
    cpu_num INTEGER DEFAULT 0, cpu_speed INTEGER DEFAULT 0,
    total_memory INTEGER DEFAULT 0, reserved_memory INTEGER DEFAULT 0,
    allocated_cpu INTEGER DEFAULT 0, allocated_memory INTEGER DEFAULT 0,
    missed_pings INTEGER DEFAULT 0, last_ping REAL, last_error TEXT DEFAULT '',
    facts_json TEXT, created REAL, updated REAL);
CREATE TABLE primary_storage (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    zone_uuid TEXT NOT NULL REFERENCES zone(uuid), type TEXT NOT NULL, url TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'Enabled', status TEXT NOT NULL DEFAULT 'Connected',
    total_capacity INTEGER DEFAULT 0, available_capacity INTEGER DEFAULT 0,
    fsid TEXT, config_json TEXT, created REAL, updated REAL);
CREATE TABLE ps_cluster (
    ps_uuid TEXT NOT NULL REFERENCES primary_storage(uuid) ON DELETE CASCADE,
    cluster_uuid TEXT NOT NULL REFERENCES cluster(uuid) ON DELETE CASCADE,
    PRIMARY KEY (ps_uuid, cluster_uuid));
CREATE TABLE local_storage_host (
    ps_uuid TEXT NOT NULL REFERENCES primary_storage(uuid) ON DELETE CASCADE,
    host_uuid TEXT NOT NULL REFERENCES host(uuid) ON DELETE CASCADE,
    total_capacity INTEGER DEFAULT 0, available_capacity INTEGER DEFAULT 0,
    PRIMARY KEY (ps_uuid, host_uuid));
CREATE TABLE backup_storage (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    type TEXT NOT NULL, url TEXT NOT NULL, hostname TEXT, agent_port INTEGER,
    state TEXT NOT NULL DEFAULT 'Enabled', status TEXT NOT NULL DEFAULT 'Connected',
    total_capacity INTEGER DEFAULT 0, available_capacity INTEGER DEFAULT 0,
    fsid TEXT, config_json TEXT, created REAL, updated REAL);
CREATE TABLE bs_zone (
    bs_uuid TEXT NOT NULL REFERENCES backup_storage(uuid) ON DELETE CASCADE,
    zone_uuid TEXT NOT NULL REFERENCES zone(uuid) ON DELETE CASCADE,
    PRIMARY KEY (bs_uuid, zone_uuid));
CREATE TABLE l2_network (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    zone_uuid TEXT NOT NULL REFERENCES zone(uuid), type TEXT NOT NULL,
    physical_interface TEXT NOT NULL, vlan INTEGER, vni INTEGER,
    created REAL, updated REAL);
CREATE TABLE l2_cluster (
    l2_uuid TEXT NOT NULL REFERENCES l2_network(uuid) ON DELETE CASCADE,
    cluster_uuid TEXT NOT NULL REFERENCES cluster(uuid) ON DELETE CASCADE,
    PRIMARY KEY (l2_uuid, cluster_uuid));
CREATE TABLE l3_network (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    zone_uuid TEXT NOT NULL REFERENCES zone(uuid),
    l2_network_uuid TEXT NOT NULL REFERENCES l2_network(uuid),
    type TEXT DEFAULT 'L3BasicNetwork', system INTEGER DEFAULT 0, dns_domain TEXT DEFAULT '',
    dns_json TEXT DEFAULT '[]', services_json TEXT DEFAULT '[]',
    state TEXT NOT NULL DEFAULT 'Enabled', created REAL, updated REAL);
CREATE TABLE ip_range (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    l3_network_uuid TEXT NOT NULL REFERENCES l3_network(uuid) ON DELETE CASCADE,
    start_ip TEXT NOT NULL, end_ip TEXT NOT NULL, netmask TEXT NOT NULL,
    gateway TEXT NOT NULL, network_cidr TEXT NOT NULL, created REAL, updated REAL);
CREATE TABLE used_ip (
    uuid TEXT PRIMARY KEY,
    l3_network_uuid TEXT NOT NULL REFERENCES l3_network(uuid) ON DELETE CASCADE,
    ip_range_uuid TEXT NOT NULL REFERENCES ip_range(uuid) ON DELETE CASCADE,
    ip TEXT NOT NULL, ip_int INTEGER NOT NULL, netmask TEXT, gateway TEXT,
    owner_uuid TEXT, purpose TEXT DEFAULT 'VmNic', created REAL, updated REAL,
    UNIQUE (l3_network_uuid, ip));
CREATE TABLE image (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    url TEXT NOT NULL, format TEXT NOT NULL, media_type TEXT DEFAULT 'RootVolumeTemplate',
    platform TEXT DEFAULT 'Linux', guest_os_type TEXT DEFAULT '',
    status TEXT NOT NULL DEFAULT 'Downloading', state TEXT NOT NULL DEFAULT 'Enabled',
    size INTEGER DEFAULT 0, actual_size INTEGER DEFAULT 0, md5 TEXT DEFAULT '',
    system INTEGER DEFAULT 0, created REAL, updated REAL);
CREATE TABLE image_bs (
    image_uuid TEXT NOT NULL REFERENCES image(uuid) ON DELETE CASCADE,
    bs_uuid TEXT NOT NULL REFERENCES backup_storage(uuid) ON DELETE CASCADE,
    install_path TEXT, status TEXT NOT NULL DEFAULT 'Downloading', updated REAL,
    PRIMARY KEY (image_uuid, bs_uuid));
CREATE TABLE image_cache (
    uuid TEXT PRIMARY KEY,
    ps_uuid TEXT NOT NULL REFERENCES primary_storage(uuid) ON DELETE CASCADE,
    host_uuid TEXT NOT NULL DEFAULT '',
    image_uuid TEXT NOT NULL, install_path TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'Downloading', size INTEGER DEFAULT 0,
    created REAL, updated REAL,
    UNIQUE (ps_uuid, host_uuid, image_uuid));
CREATE TABLE instance_offering (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    cpu_num INTEGER NOT NULL, cpu_speed INTEGER DEFAULT 1, memory_size INTEGER NOT NULL,
    allocator_strategy TEXT DEFAULT 'DefaultHostAllocatorStrategy',
    state TEXT NOT NULL DEFAULT 'Enabled', created REAL, updated REAL);
CREATE TABLE disk_offering (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    disk_size INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'Enabled',
    created REAL, updated REAL);
CREATE TABLE vm (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    zone_uuid TEXT, cluster_uuid TEXT, host_uuid TEXT, last_host_uuid TEXT,
    image_uuid TEXT, instance_offering_uuid TEXT, root_volume_uuid TEXT,
    default_l3_network_uuid TEXT, state TEXT NOT NULL DEFAULT 'Created',
    cpu_num INTEGER, cpu_speed INTEGER, memory_size INTEGER,
    allocator_strategy TEXT, ha_level TEXT DEFAULT '', platform TEXT DEFAULT 'Linux',
    boot_order_json TEXT DEFAULT '["HardDisk"]', created REAL, updated REAL);
CREATE TABLE vm_nic (
    uuid TEXT PRIMARY KEY, vm_uuid TEXT NOT NULL REFERENCES vm(uuid) ON DELETE CASCADE,
    l3_network_uuid TEXT NOT NULL, ip TEXT, netmask TEXT, gateway TEXT,
    mac TEXT NOT NULL UNIQUE, device_id INTEGER NOT NULL, created REAL, updated REAL);
CREATE TABLE volume (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    vm_uuid TEXT, ps_uuid TEXT, host_uuid TEXT DEFAULT '', disk_offering_uuid TEXT,
    root_image_uuid TEXT, type TEXT NOT NULL, format TEXT, install_path TEXT,
    size INTEGER DEFAULT 0, actual_size INTEGER DEFAULT 0, device_id INTEGER,
    status TEXT NOT NULL DEFAULT 'Creating', state TEXT NOT NULL DEFAULT 'Enabled',
    created REAL, updated REAL);
CREATE TABLE system_tag (
    uuid TEXT PRIMARY KEY, resource_uuid TEXT NOT NULL, resource_type TEXT NOT NULL,
    tag TEXT NOT NULL, inherent INTEGER DEFAULT 0, created REAL, updated REAL);
CREATE INDEX system_tag_resource ON system_tag (resource_uuid);
CREATE TABLE global_config (
    category TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
    default_value TEXT NOT NULL, description TEXT DEFAULT '', created REAL, updated REAL,
    PRIMARY KEY (category, name));
CREATE TABLE job (
    uuid TEXT PRIMARY KEY, api TEXT NOT NULL, state TEXT NOT NULL,
    request_json TEXT, result_json TEXT, error TEXT DEFAULT '', timeout REAL,
    created REAL, updated REAL, finished REAL)
"""

_V2 = """
CREATE TABLE vip (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    l3_network_uuid TEXT NOT NULL REFERENCES l3_network(uuid),
    ip TEXT NOT NULL, netmask TEXT NOT NULL, gateway TEXT NOT NULL,
    use_for TEXT DEFAULT '', state TEXT NOT NULL DEFAULT 'Enabled',
    created REAL, updated REAL);
CREATE TABLE eip (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    vip_uuid TEXT NOT NULL UNIQUE REFERENCES vip(uuid),
    vm_nic_uuid TEXT UNIQUE REFERENCES vm_nic(uuid) ON DELETE SET NULL,
    guest_ip TEXT, state TEXT NOT NULL DEFAULT 'Enabled', created REAL, updated REAL)
"""

_V3 = """
CREATE TABLE gc_job (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    host_uuid TEXT NOT NULL, path TEXT NOT NULL, body_json TEXT NOT NULL,
    is_async INTEGER NOT NULL DEFAULT 0, via_ps_uuid TEXT DEFAULT '',
    status TEXT NOT NULL DEFAULT 'Pending', attempts INTEGER DEFAULT 0,
    last_error TEXT DEFAULT '', created REAL, updated REAL);
CREATE INDEX gc_job_host ON gc_job (host_uuid, status);
CREATE INDEX vm_state ON vm (state, updated)
"""

_V4 = """
ALTER TABLE vm ADD COLUMN iso_uuid TEXT
"""

_V5 = """
ALTER TABLE gc_job ADD COLUMN via_bs_uuid TEXT DEFAULT '';
CREATE INDEX volume_status ON volume (status, updated);
CREATE INDEX image_bs_status ON image_bs (status, updated)
"""

_V6 = """
CREATE TABLE volume_snapshot (
    uuid TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT DEFAULT '',
    volume_uuid TEXT NOT NULL REFERENCES volume(uuid) ON DELETE CASCADE,
    ps_uuid TEXT NOT NULL, install_path TEXT NOT NULL, size INTEGER DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'Creating', created REAL, updated REAL);
CREATE INDEX volume_snapshot_volume ON volume_snapshot (volume_uuid)
"""

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "inventory, global configs and jobs", _V1),
    (2, "VIPs and EIPs", _V2),
    (3, "garbage collection jobs; VMs by state", _V3),
    (4, "the ISO in a VM's cdrom drive", _V4),
    (5, "GC jobs of backup storages; the expungers' scans by status", _V5),
    (6, "volume snapshots", _V6),
]
