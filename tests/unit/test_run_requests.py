"""Run requests from our annotation and Flux's: which value is new, what a run records."""

from __future__ import annotations

from examsync.kube import run_requests as rr
from examsync.kube.run_requests import ECHO, FLUX_REQUESTED_AT, HANDLED, REQUESTED_AT


def test_no_annotation_no_request() -> None:
    requests = rr.read({}, {})
    assert requests.pending is None and not requests.values
    assert rr.record({"x": 1}, requests) == {"x": 1}


def test_a_value_not_seen_by_a_run_is_pending_and_is_echoed() -> None:
    requests = rr.read({FLUX_REQUESTED_AT: "2026-11-23T10:00:00Z"}, {})
    assert requests.pending == "2026-11-23T10:00:00Z"
    after = rr.record({}, requests)
    assert after[ECHO] == "2026-11-23T10:00:00Z"
    assert after[HANDLED] == {FLUX_REQUESTED_AT: "2026-11-23T10:00:00Z"}
    assert rr.read({FLUX_REQUESTED_AT: "2026-11-23T10:00:00Z"}, after).pending is None


def test_handling_one_annotation_never_makes_the_other_new_again() -> None:
    ours = rr.record({}, rr.read({REQUESTED_AT: "1"}, {}))
    both = {REQUESTED_AT: "1", FLUX_REQUESTED_AT: "f1"}
    flux = rr.read(both, ours)
    assert flux.pending == "f1"
    after = rr.record(ours, flux)
    assert after[ECHO] == "f1"
    assert rr.read(both, after).pending is None  # our "1" was handled before: not new


def test_when_both_are_new_ours_is_echoed_and_both_are_handled() -> None:
    both = {REQUESTED_AT: "2", FLUX_REQUESTED_AT: "f2"}
    requests = rr.read(both, {})
    assert requests.pending == "2"
    after = rr.record({}, requests)
    assert after[ECHO] == "2" and rr.read(both, after).pending is None


def test_status_written_before_flux_was_honoured_keeps_our_value_handled() -> None:
    legacy = {ECHO: "42"}
    assert rr.read({REQUESTED_AT: "42"}, legacy).pending is None
    assert rr.read({REQUESTED_AT: "43"}, legacy).pending == "43"


def test_values_that_are_no_request_are_ignored() -> None:
    requests = rr.read({REQUESTED_AT: "", FLUX_REQUESTED_AT: "x" * (rr.MAX_VALUE + 1), "other": "1"}, {})
    assert requests.pending is None and not requests.values
