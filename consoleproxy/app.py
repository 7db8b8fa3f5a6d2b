"""consoleproxy: the console proxy (websockify/noVNC tokens to VM consoles).

Foundation skeleton: it serves its readiness and liveness endpoints; the real commands
arrive with their issues.
"""

from __future__ import annotations

from agentlib.skeleton import Skeleton

PORT = 7758

skeleton = Skeleton("consoleproxy", PORT, "/console", __doc__.splitlines()[0])
build = skeleton.build
main = skeleton.main
