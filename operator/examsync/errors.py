"""Errors that stop a run, each with the condition reason it stands for (as Flux's error types do).

A run-stopping error is raised where the trouble is found (the HTTP layer, Secret resolution, the
host allowlist) and caught once, by ``except RunStoppingError``, where the run or the pipeline
stops: its ``reason`` and ``stalled`` go to the report and from there to status, events and
metrics. Nothing reads a reason back out of a message.
"""

from __future__ import annotations

from typing import ClassVar

from examsync.api.conditions import ConditionReason


class RunStoppingError(Exception):
    """Retrying the next item cannot help: the run (or the pipeline's run) stops here.

    ``condition_reason`` is the class's Ready/Stalled reason; ``stalls`` says whether only a
    person can fix it (Stalled) or a later run may succeed on its own. A subclass whose instances
    say more (a 401 or a 403) overrides the ``reason`` and ``stalled`` properties.
    """

    condition_reason: ClassVar[ConditionReason]
    stalls: ClassVar[bool] = True

    @property
    def reason(self) -> ConditionReason:
        return self.condition_reason

    @property
    def stalled(self) -> bool:
        return self.stalls
