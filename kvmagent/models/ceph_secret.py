"""Ceph secret commands: the cephx key qemu needs to open a VM's RBD disks."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from agentlib.models import AgentCommand
from agentlib.types import Uuid


def _cephx_key(v: str) -> str:
    # The message never echoes the value: it is a credential.
    try:
        if not base64.b64decode(v, validate=True):
            raise ValueError("empty")
    except (binascii.Error, ValueError):
        raise ValueError("not a base64 cephx key (value not shown)") from None
    return v


CephxKey = Annotated[
    str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_cephx_key)
]
CephUser = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class CreateCephSecretCmd(AgentCommand):
    user_key: CephxKey = Field(repr=False)  # a credential: never in a repr or a log
    uuid: Uuid
    user_name: CephUser = "admin"


class DeleteCephSecretCmd(AgentCommand):
    uuid: Uuid
