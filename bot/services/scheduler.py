"""The register's daily work, run by `klachtwijzer run` (issue 4).

Every minute: deliver pending messages to clients (status updates the secretary made in the CLI,
follow-up questions). Once a day, from 06:00 Dutch time, for each organisation of the deployment
with its own periods: lapse cases of clients unreachable for two months (`002` §4.1), ask the
follow-up question (`003` §4), destroy dossiers past retention (`001` art. 17.4) and send its
digest to its own committee mailbox (issue 11). "Once a day" is claimed in the
database, so a restart or a second process does not send a second digest; a run that died
halfway is claimed again after an hour. With several processes on one database, each round runs
in one of them only (`Database.exclusive`), so a pending message is not delivered twice. Time
comes from `app.clock`, so tests move it by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from bot.services.register import (
    ORG_TZ,
    add_digest,
    deliver_pending,
    digest_sections,
    lapse_unreachable,
    purge,
    send_follow_ups,
)

if TYPE_CHECKING:
    from bot.services.ports import ServiceHost

log = logging.getLogger(__name__)

DAILY_AT = time(6, 0)  # Dutch time
INBOUND_KEPT = timedelta(days=30)  # how long a handled update id is remembered
# A daily run that started this long ago and did not finish is taken as dead and run again.
DAILY_LEASE = timedelta(hours=1)
SCHEDULER_LOCK = "scheduler"  # `Database.exclusive`: one process runs a round of this work


@dataclass(frozen=True)
class DailyResult:
    lapsed: tuple[str, ...]
    follow_ups: int
    purged: int
    digest_sent: bool
    pruned_updates: int = 0


async def run_daily_once(app: ServiceHost) -> DailyResult | None:
    """Run the daily jobs if today's run is due and not yet claimed; None if nothing ran."""
    now = app.clock()
    local = now.astimezone(ORG_TZ)
    if local.time() < DAILY_AT:
        return None
    today = local.date()
    day_start = datetime.combine(today, time(0), ORG_TZ)
    day_end = datetime.combine(today + timedelta(days=1), time(0), ORG_TZ)
    async with app.db.unit_of_work() as uow:
        claimed = await uow.register.claim_daily_run(now, day_start, DAILY_LEASE)
        await uow.commit()
    if not claimed:
        return None
    # The jobs may run again for the same day: a case lapses once, a follow-up is asked once, a
    # destroyed dossier is gone, and the digest commits with the day's "done" mark.
    lapsed: list[str] = []
    asked = purged = 0
    digests = []
    for organisation in app.deployment.organisations:
        its_lapsed = await lapse_unreachable(app, organisation)
        lapsed += its_lapsed
        asked += await send_follow_ups(app, organisation)
        purged += len((await purge(app, organisation=organisation)).cases)
        digests.append((organisation,
                        await digest_sections(app, lapsed=its_lapsed, organisation=organisation)))
    async with app.db.unit_of_work() as uow:
        # Update ids only guard against redelivery (WhatsApp retries for up to 7 days).
        pruned = await uow.inbound.prune(now - INBOUND_KEPT)
        await uow.commit()
    async with app.db.unit_of_work() as uow:  # the digests and "done" commit together
        sent = False
        for organisation, sections in digests:
            sent = await add_digest(app, uow, sections, organisation=organisation) or sent
        await uow.register.finish_daily_run(now, day_end)
        await uow.commit()
    log.info("register daily run: %d organisations, %d lapsed, %d follow-ups, %d dossiers "
             "destroyed, digest %s", len(digests), len(lapsed), asked, purged,
             "queued" if sent else "not needed")
    return DailyResult(tuple(lapsed), asked, purged, sent, pruned)


async def run_daily(app: ServiceHost, stop: asyncio.Event, interval: float = 60.0) -> None:
    """Until `stop`: pending client messages every `interval` seconds, the daily jobs once a day."""
    while not stop.is_set():
        try:
            # One process at a time, of all on this database: a notification is delivered once.
            async with app.db.exclusive(SCHEDULER_LOCK) as mine:
                if mine:
                    await deliver_pending(app)
                    await run_daily_once(app)
        except Exception as exc:  # the database or a channel may be briefly unavailable
            log.warning("register scheduler run failed: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
