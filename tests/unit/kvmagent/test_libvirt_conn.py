"""The agent's libvirt connection on libvirt's in-process test driver (the real libvirt
API, no daemon, no qemu): what the control-plane benchmark runs kvmagent on."""

import threading

from kvmagent.drivers.libvirt_conn import LibvirtConnection


def test_the_test_driver_connects_and_delivers_lifecycle_events():
    events, seen = [], threading.Event()

    def on_event(event):
        events.append(event)
        seen.set()

    conn = LibvirtConnection("test:///default", on_event)
    conn.open()
    try:
        assert conn.last_error == ""  # keepalive is not attempted on an in-process driver
        dom = conn.conn.lookupByName("test")  # the driver's built-in running domain
        dom.suspend()
        assert seen.wait(5)
        assert ("test", "suspended") in {(e.name, e.kind) for e in events}
        dom.resume()
    finally:
        conn.close()
