"""What the deletion policies of VMs, volumes and images share (ZStack 1.0): each category
has ``deletionPolicy`` (Direct, Delay, Never), ``expungePeriod`` and ``expungeInterval``
global configs, and a scan every interval expunges what was deleted more than a period
ago, except under policy Never (there only the Expunge APIs remove the bits).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from coordinator.api import ApiError
from coordinator.context import Context

log = logging.getLogger(__name__)
EXPUNGE_TIMEOUT = 600.0  # one resource's expunge, as the scan's deadline


def policy(ctx: Context, category: str) -> str:
    return str(ctx.gconf.get(category, "deletionPolicy"))


def expunge_due(ctx: Context, category: str, due: Callable[[float], list[dict]],
                expunge_one: Callable[[dict], None]) -> int:
    """Expunge each row ``due(before)`` lists (deleted at or before ``before``; each has
    a ``uuid``) with ``expunge_one``; how many went. One that an API holds or whose agent
    refuses (an ApiError, TimeoutError or LookupError) waits for the next scan."""
    if policy(ctx, category) == "Never":
        return 0
    before = time.time() - float(ctx.gconf.get(category, "expungePeriod"))
    done = 0
    for row in due(before):
        try:
            expunge_one(row)
            done += 1
        except (ApiError, TimeoutError, LookupError) as exc:
            log.warning("%s %s not expunged now: %s", category, row["uuid"], exc)
    if done:
        log.info("expunger: %d %s(s) expunged", done, category)
    return done
