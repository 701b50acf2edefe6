"""Errors that stop a run carry their condition reason as a type; nothing reads a message back."""

from __future__ import annotations

import ast

import pytest

from examsync.adapters.errors import AuthError, CircuitOpen, HostNotAllowed, UpstreamError, stop_reason
from examsync.api.conditions import ConditionReason
from examsync.api.spec import SpecError
from examsync.credentials import SecretMissing, SecretNotAllowed, SecretUnreadable
from examsync.errors import RunStoppingError
from examsync.hosts import HostRefused
from tests.support.paths import REPO

PACKAGE = REPO / "operator" / "examsync"


@pytest.mark.parametrize(
    ("error", "reason", "stalled"),
    [
        (AuthError("fs", "list", "", 401), ConditionReason.UNAUTHORIZED, True),
        (AuthError("inspera", "token", "", 403), ConditionReason.FORBIDDEN, True),
        (HostNotAllowed("fs", "connect", "host x is not in the allowlist"), ConditionReason.HOST_NOT_ALLOWED, True),
        (CircuitOpen("fs", "get", "given up"), ConditionReason.UPSTREAM_UNAVAILABLE, False),
        (HostRefused([("spec.fs.baseUrl", "host x is not in the allowlist")]), ConditionReason.HOST_NOT_ALLOWED, True),
        (SecretMissing("spec.fs.credentialsSecretRef", "uio-fs"), ConditionReason.SECRET_MISSING, True),
        (
            SecretNotAllowed("spec.audit.humio.tokenSecretRef", "t", "kubernetes.io/service-account-token"),
            ConditionReason.SECRET_NOT_ALLOWED,
            True,
        ),
        (SecretUnreadable("uio-fs", 403), ConditionReason.SECRET_UNREADABLE, True),
        (SecretUnreadable("uio-fs", 500), ConditionReason.SECRET_UNREADABLE, False),
        (SpecError(["spec.fs: field required"]), ConditionReason.INVALID_SPEC, True),
    ],
)
def test_each_run_stopping_error_carries_its_reason(
    error: RunStoppingError, reason: ConditionReason, stalled: bool
) -> None:
    assert isinstance(error, RunStoppingError)
    assert (error.reason, error.stalled) == (reason, stalled)


def test_an_upstream_error_that_does_not_stop_the_run_means_the_system_is_unavailable() -> None:
    assert stop_reason(UpstreamError("fs", "list", "", 503)) == (ConditionReason.UPSTREAM_UNAVAILABLE, False)
    assert stop_reason(AuthError("fs", "list", "", 401)) == (ConditionReason.UNAUTHORIZED, True)


def test_every_run_stopping_error_in_the_package_declares_its_reason() -> None:
    declared = {cls.__name__ for cls in _subclasses(RunStoppingError)}
    assert {
        "AuthError",
        "CircuitOpen",
        "HostNotAllowed",
        "HostRefused",
        "SecretMissing",
        "SecretNotAllowed",
        "SecretUnreadable",
        "SpecError",
    } <= declared
    for cls in _subclasses(RunStoppingError):
        assert isinstance(cls.condition_reason, ConditionReason), cls


def test_no_regex_reads_a_reason_out_of_a_message() -> None:
    """Reasons travel as types: the status and report modules parse no message."""
    for module in ("kube/status.py", "kube/reconciler.py", "report.py", "pipelines/runner.py", "pipelines/driver.py"):
        tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert "re" not in imported, module


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found
