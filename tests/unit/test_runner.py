"""A run that cannot start (a Secret or key missing) reports each pipeline as the contract says."""

from __future__ import annotations

from examsync.pipelines.runner import run_institution
from examsync.secrets import StaticSecrets
from examsync.spec import parse_spec
from examsync.state import InstitutionState

SPEC = parse_spec({
    "shortName": "UiO",
    "fs": {"baseUrl": "https://fsws.usit.no", "institutionNumber": "185", "startYear": 2025,
           "credentialsSecretRef": {"name": "uio-fs"}},
    "inspera": {"enabled": True, "baseUrl": "https://uio.inspera.no/api", "clientId": "uio.inspera.no",
                "credentialsSecretRef": {"name": "uio-inspera"}},
})


async def test_a_missing_key_stalls_before_any_call_and_names_field_and_key() -> None:
    secrets = StaticSecrets({"uio-fs": {"username": "u"}, "uio-inspera": {"apiKey": "k"}})
    report, state = await run_institution("uio", "examsync", SPEC, secrets, InstitutionState())
    assert report.is_stalled and report.failed
    assert report.error == "spec.fs.credentialsSecretRef: key 'password' of Secret 'uio-fs' not found"
    assert [(f.key, f.reason) for f in report.failures()] == [("fs-inspera", "UpstreamError")]
    assert report.as_json()["pipelines"] == {}
    assert state == InstitutionState()  # nothing ran, nothing advanced
