"""Every pipeline: how to build it, what it counts, how many items it handles at once.

The runner looks pipelines up here; no pipeline module knows the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from examsync.api.spec import InstitutionSpec, PipelineName
from examsync.domain.outcomes import FsCounts, PipelineCounts, PraktikportalenCounts
from examsync.pipelines import fs_inspera, fs_wiseflow, praktikportalen_wiseflow
from examsync.pipelines.base import PipelineFactory

DEFAULT_CONCURRENCY = 8


@dataclass(frozen=True)
class PipelineKind:
    build: PipelineFactory
    counts: type[PipelineCounts]
    concurrency: Callable[[InstitutionSpec], int]


def _inspera_concurrency(spec: InstitutionSpec) -> int:
    return spec.inspera.concurrency if spec.inspera is not None else DEFAULT_CONCURRENCY


def _wiseflow_concurrency(spec: InstitutionSpec) -> int:
    return spec.wiseflow.concurrency if spec.wiseflow is not None else DEFAULT_CONCURRENCY


PIPELINES: Mapping[PipelineName, PipelineKind] = {
    PipelineName.FS_INSPERA: PipelineKind(fs_inspera.build, FsCounts, _inspera_concurrency),
    PipelineName.FS_WISEFLOW: PipelineKind(fs_wiseflow.build, FsCounts, _wiseflow_concurrency),
    PipelineName.PRAKTIKPORTALEN_WISEFLOW: PipelineKind(
        praktikportalen_wiseflow.build, PraktikportalenCounts, _wiseflow_concurrency
    ),
}
