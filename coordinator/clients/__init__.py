"""Typed clients of the agents: one class per agent, a method per endpoint the
coordinator calls, bodies built from the agent's own command models and replies parsed
into its reply models (:mod:`.endpoint`), sent through the coordinator's one
:class:`~coordinator.agentclient.AgentClient` (:mod:`.transport`).

Only the agents' ``models`` packages are imported here, never their drivers or
handlers. ``tests/unit/coordinator/test_clients_contract.py`` checks every endpoint
declared here against the agent's OpenAPI document."""
