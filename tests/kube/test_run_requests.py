"""Run requests from our annotation and Flux's: which value is new, what a run records."""

from __future__ import annotations

from examsync.api.status import InstitutionStatus
from examsync.kube import run_requests as rr
from examsync.kube.run_requests import FLUX_REQUESTED_AT, REQUESTED_AT

EMPTY = InstitutionStatus()


def handled(status: InstitutionStatus, requests: rr.RunRequests) -> InstitutionStatus:
    """What a finished run writes: the pending value echoed, every value seen recorded."""
    echoed = status.model_copy(update={"lastHandledRequestedAt": requests.pending or status.lastHandledRequestedAt})
    return rr.record(echoed, requests)


def test_no_annotation_no_request() -> None:
    requests = rr.read({}, EMPTY)
    assert requests.pending is None and not requests.values
    assert rr.record(EMPTY, requests) == EMPTY


def test_a_value_not_seen_by_a_run_is_pending_and_is_recorded() -> None:
    requests = rr.read({FLUX_REQUESTED_AT: "2026-11-23T10:00:00Z"}, EMPTY)
    assert requests.pending == "2026-11-23T10:00:00Z"
    after = handled(EMPTY, requests)
    assert after.wire()["handledRequests"] == {FLUX_REQUESTED_AT: "2026-11-23T10:00:00Z"}
    assert rr.read({FLUX_REQUESTED_AT: "2026-11-23T10:00:00Z"}, after).pending is None


def test_handling_one_annotation_never_makes_the_other_new_again() -> None:
    ours = handled(EMPTY, rr.read({REQUESTED_AT: "1"}, EMPTY))
    both = {REQUESTED_AT: "1", FLUX_REQUESTED_AT: "f1"}
    flux = rr.read(both, ours)
    assert flux.pending == "f1"
    after = handled(ours, flux)
    assert after.lastHandledRequestedAt == "f1"
    assert rr.read(both, after).pending is None  # our "1" was handled before: not new


def test_when_both_are_new_ours_is_echoed_and_both_are_handled() -> None:
    both = {REQUESTED_AT: "2", FLUX_REQUESTED_AT: "f2"}
    requests = rr.read(both, EMPTY)
    assert requests.pending == "2"
    assert rr.read(both, handled(EMPTY, requests)).pending is None


def test_status_written_before_flux_was_honoured_keeps_our_value_handled() -> None:
    legacy = InstitutionStatus.load({"lastHandledRequestedAt": "42"})
    assert rr.read({REQUESTED_AT: "42"}, legacy).pending is None
    assert rr.read({REQUESTED_AT: "43"}, legacy).pending == "43"


def test_values_that_are_no_request_are_ignored() -> None:
    requests = rr.read({REQUESTED_AT: "", FLUX_REQUESTED_AT: "x" * (rr.MAX_VALUE + 1), "other": "1"}, EMPTY)
    assert requests.pending is None and not requests.values
