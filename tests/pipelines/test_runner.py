"""A run that cannot start (a Secret or key missing) reports each pipeline as the contract says."""

from __future__ import annotations

from examsync.api.spec import parse_spec
from examsync.credentials import StaticSecrets
from examsync.pipelines.runner import run_institution
from examsync.state import InstitutionState
from tests.support.specs import uio_spec

SPEC = parse_spec(uio_spec())


async def test_a_missing_key_stalls_before_any_call_and_names_field_and_key() -> None:
    secrets = StaticSecrets({"uio-fs": {"username": "u"}, "uio-inspera": {"apiKey": "k"}})
    report, state = await run_institution("uio", "examsync", SPEC, secrets, InstitutionState())
    assert report.is_stalled and report.failed
    assert report.error == "spec.fs.credentialsSecretRef: key 'password' of Secret 'uio-fs' not found"
    assert [(f.key, f.reason) for f in report.failures()] == [("fs-inspera", "UpstreamError")]
    assert report.as_json()["pipelines"] == {}
    assert state == InstitutionState()  # nothing ran, nothing advanced


def test_digests_are_bounded_but_assessor_markers_are_kept() -> None:
    from examsync.state import PipelineState, trim_digests

    digests = {f"user-v2:{n}": "d" for n in range(10)} | {"assessor-v2:1": "1"}
    trimmed = trim_digests(digests, 5)
    assert len(trimmed) == 5 and "assessor-v2:1" in trimmed
    assert "user-v2:9" in trimmed and "user-v2:0" not in trimmed  # the oldest go first
    after = PipelineState(digests=digests).advance(None, [], listed_ok=False)
    assert after.digests == digests  # under the default bound nothing is dropped
