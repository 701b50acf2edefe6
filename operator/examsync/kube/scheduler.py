"""When an Institution runs next: at once for something new, else on its interval with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from examsync.api.conditions import ConditionType, is_true
from examsync.api.status import InstitutionStatus

JITTER = 0.1  # share of the interval added at random, so Institutions drift apart
RESTART_SPREAD_MAX = timedelta(minutes=5)  # overdue runs found at start are spread over this at most

# triggers (said in the Reconciling message and the logs)
NEW = "New"
SPEC_CHANGED = "SpecChanged"
REQUESTED = "Requested"
INTERRUPTED = "Interrupted"
SCHEDULED = "Scheduled"


@dataclass(frozen=True)
class Decision:
    trigger: str | None  # run now for this reason; None: wait
    wake_at: datetime | None = None  # None with no trigger: wait for a change of the object
    spread: bool = False  # an overdue run held back after a restart: keep holding until wake_at


def next_run(after: datetime, interval: timedelta, rng: random.Random) -> datetime:
    """``interval`` plus up to 10 % of it."""
    return after + interval * (1 + rng.uniform(0, JITTER))


def decide(
    status: InstitutionStatus,
    *,
    generation: int | None,
    requested_at: str | None,
    interval: timedelta,
    now: datetime,
    rng: random.Random,
    first: bool,
    hold_until: datetime | None = None,
) -> Decision:
    """What to do now, given the status this operator last wrote.

    ``first`` is the first look after the operator (re)started: a scheduled run found overdue
    then waits a random share of the interval (at most 10 %, at most 5 minutes), so many
    Institutions do not all fire together after a restart. The caller keeps that time and passes
    it back as ``hold_until``: a watch event during the wait must not end it early.
    """
    if status.lastRunTime is None:
        return Decision(NEW)
    if is_true(status.conditions, ConditionType.RECONCILING):
        return Decision(INTERRUPTED)  # a run was cut off (crash, eviction): resume it
    if generation is not None and status.observedGeneration != generation:
        return Decision(SPEC_CHANGED)
    if requested_at is not None and requested_at != status.lastHandledRequestedAt:
        return Decision(REQUESTED)
    due = status.nextRunTime or status.lastRunTime + interval
    if due > now:
        return Decision(None, due)
    if first:
        spread = min(interval * JITTER, RESTART_SPREAD_MAX).total_seconds()
        return Decision(None, now + timedelta(seconds=rng.uniform(0, spread)), spread=True)
    if hold_until is not None and now < hold_until:
        return Decision(None, hold_until, spread=True)
    return Decision(SCHEDULED)
