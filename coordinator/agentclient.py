"""Calling agents: sync commands in the HTTP reply, async ones through a callback.

An async call sends ``taskuuid`` and ``callbackurl`` (this coordinator's ``/callback``)
and waits for the agent to POST the reply there. If the wait times out, the task is
cancelled on the agent (``/job/cancel``, best effort) so it does not go on unseen.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid as uuidlib

import requests
import urllib3

from agentlib.delivery import thread_session

log = logging.getLogger(__name__)


class AgentCallError(Exception):
    """The agent refused or failed the command, or could not be reached."""

    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


class CallbackHub:
    """Waiters for async replies by taskuuid; ``deliver`` is called by ``/callback``."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: set[str] = set()
        self._replies: dict[str, dict] = {}

    def expect(self, taskuuid: str) -> None:
        with self._cond:
            self._waiting.add(taskuuid)

    def deliver(self, taskuuid: str, body: dict) -> bool:
        """False if nobody waits for it (a late or foreign callback)."""
        with self._cond:
            if taskuuid not in self._waiting:
                return False
            self._replies[taskuuid] = body
            self._cond.notify_all()
            return True

    def wait(self, taskuuid: str, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            try:
                while taskuuid not in self._replies:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._cond.wait(left)
                return self._replies.pop(taskuuid)
            finally:
                self._waiting.discard(taskuuid)


class AgentClient:
    def __init__(self, callback_url: str, timeout: float = 30.0):
        self.callback_url = callback_url
        self.timeout = timeout
        self.hub = CallbackHub()

    def call(self, url: str, path: str, body: dict, timeout: float | None = None) -> dict:
        """A sync command; its reply, or :class:`AgentCallError`."""
        return self._post(url, path, body, timeout or self.timeout)

    def call_async(self, url: str, path: str, body: dict, timeout: float) -> dict:
        """An async command: the reply the agent calls back with, within ``timeout``."""
        taskuuid = uuidlib.uuid4().hex
        self.hub.expect(taskuuid)
        try:
            self._post(url, path, body, min(timeout, self.timeout),
                       headers={"taskuuid": taskuuid, "callbackurl": self.callback_url})
        except AgentCallError:
            self.hub.wait(taskuuid, 0)  # forget it
            raise
        reply = self.hub.wait(taskuuid, timeout)
        if reply is None:
            try:
                self._post(url, "/job/cancel", {"taskUuid": taskuuid}, 5)
            except AgentCallError as exc:
                log.warning("could not cancel %s on %s: %s", path, url, exc)
            raise AgentCallError(f"{url}{path}: no reply within {timeout:.0f}s "
                                 f"(task {taskuuid} cancelled)")
        if not reply.get("success", False):
            raise AgentCallError(f"{url}{path}: {reply.get('error') or 'failed'}")
        return reply

    def _post(self, url: str, path: str, body: dict, timeout: float,
              headers: dict | None = None) -> dict:
        for attempt in (1, 2):
            try:
                resp = thread_session().post(url + path, json=body, timeout=timeout,
                                             headers=headers)
                break
            except requests.RequestException as exc:
                if attempt == 1 and _dropped_keepalive(exc):
                    log.info("%s%s: the kept-alive connection was gone (%s): sending again "
                             "on a new one", url, path, exc)
                    continue
                raise AgentCallError(f"{url}{path}: agent unreachable: {exc}",
                                     unreachable=True) from None
        try:
            reply = resp.json()
        except ValueError:
            raise AgentCallError(f"{url}{path}: HTTP {resp.status_code}, not JSON: "
                                 f"{resp.text[:200]!r}") from None
        if not isinstance(reply, dict) or not reply.get("success", False):
            error = reply.get("error") if isinstance(reply, dict) else reply
            raise AgentCallError(f"{url}{path}: {error or f'HTTP {resp.status_code}'}")
        return reply


def _dropped_keepalive(exc: requests.RequestException) -> bool:
    """The agent closed (or, after a network cut, forgot) a pooled connection, and the
    request went out on it: nothing reached the agent's handler, and agent commands are
    idempotent anyway, so one resend on a fresh connection is safe. Timeouts and refused
    connections are not this."""
    return isinstance(exc, requests.ConnectionError) and bool(exc.args) and isinstance(
        exc.args[0], urllib3.exceptions.ProtocolError)
