"""Shared fixtures live in tests/fixtures/ (one module per area), registered here."""

pytest_plugins = [
    "tests.fixtures.leaks",  # first, so its session check runs after every other teardown
    "tests.fixtures.agents",
    "tests.fixtures.ceph",
    "tests.fixtures.cephagent",
    "tests.fixtures.hosts",
    "tests.fixtures.guestimage",
    "tests.fixtures.kvm",
    "tests.fixtures.dhcp",
    "tests.fixtures.eip",
    "tests.fixtures.sftpbs",
    "tests.fixtures.coordinator",
    "tests.fixtures.storages",
    "tests.fixtures.isolated",
    "tests.fixtures.decoys",
]
