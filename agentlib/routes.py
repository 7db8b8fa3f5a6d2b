"""A handler module's routes, declared at import and served by ``Agent.include``.

The handlers are then module-level functions (importable, named, callable from a test)
rather than closures inside a ``register()``. What they work on (drivers, config, the
agent's locks) is the state the agent passes as their first argument, so two agents in
one process serve the same functions, each on its own state::

    routes = Routes()

    @routes.sync("/flatnetworkprovider/dhcp/apply")
    def apply(net: Dhcp, cmd: ApplyDhcpCmd) -> DhcpReply: ...

    agent.include(routes, Dhcp(agent, flat_dhcp))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Declared:
    path: str
    kind: str  # "sync" | "async"
    handler: Callable
    options: dict = field(default_factory=dict)


class Routes:
    def __init__(self) -> None:
        self.declared: list[Declared] = []

    def sync(self, path: str, *, quiet: bool = False):
        """A handler that answers in the HTTP reply (as ``Agent.sync``)."""
        return self._declare(path, "sync", quiet=quiet)

    def async_(self, path: str, *, quiet: bool = False, long: bool = False,
               check: Callable | None = None):
        """A handler that answers via ``callbackurl`` (as ``Agent.async_``); ``check`` is
        called with the state too: ``check(state, cmd)``."""
        return self._declare(path, "async", quiet=quiet, long=long, check=check)

    def _declare(self, path: str, kind: str, **options):
        def decorate(fn: Callable) -> Callable:
            self.declared.append(Declared(path, kind, fn, options))
            return fn

        return decorate
