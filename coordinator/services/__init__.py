"""The service layer: what the coordinator does (VM flows, networks on hosts, EIPs, HA and
failover, deletion, GC, storage), under the API handlers, the agent reports and the
scheduler alike. Nothing here imports :mod:`coordinator.apis`."""
