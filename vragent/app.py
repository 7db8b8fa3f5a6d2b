"""vragent: the agent inside virtual router VMs (DHCP, DNS, SNAT, EIP, port forwarding, LB).

Foundation skeleton: it serves its readiness and liveness endpoints; the real commands
arrive with their issues.
"""

from __future__ import annotations

from agentlib.skeleton import Skeleton

PORT = 7272

skeleton = Skeleton("vragent", PORT, "", __doc__.splitlines()[0])
build = skeleton.build
main = skeleton.main
