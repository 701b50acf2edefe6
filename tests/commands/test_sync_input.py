"""`examsync sync` on invalid input: exit 2 and a message naming the file, object and field."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from examsync.cli import main
from examsync.commands.sync import EXIT_INVALID, sync_command
from tests.support.specs import uio_spec


def institution(**spec_over: Any) -> dict[str, Any]:
    spec = uio_spec(**spec_over)
    return {
        "apiVersion": "examsync.io/v1alpha1",
        "kind": "Institution",
        "metadata": {"name": "uio", "namespace": "examsync"},
        "spec": spec,
    }


def secret(name: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "examsync"},
        "stringData": data,
    }


def run(tmp_path: Path, *docs: dict[str, Any]) -> tuple[int, str]:
    path = tmp_path / "inst.yaml"
    path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = sync_command([path], out=out, err=err)
    return code, err.getvalue()


def test_missing_field(tmp_path: Path) -> None:
    doc = institution()
    del doc["spec"]["fs"]["institutionNumber"]
    code, err = run(tmp_path, doc)
    assert code == EXIT_INVALID
    assert "spec.fs.institutionNumber: field required" in err
    assert "inst.yaml" in err


def test_missing_secret_names_field(tmp_path: Path) -> None:
    code, err = run(tmp_path, institution(), secret("uio-fs", username="u", password="p"))
    assert code == EXIT_INVALID
    assert "spec.inspera.credentialsSecretRef: Secret 'uio-inspera' not found" in err


def test_missing_secret_key(tmp_path: Path) -> None:
    code, err = run(tmp_path, institution(), secret("uio-fs", username="u"), secret("uio-inspera", apiKey="k"))
    assert code == EXIT_INVALID
    assert "spec.fs.credentialsSecretRef: Secret 'uio-fs' lacks key 'password'" in err


def test_secret_in_other_namespace_is_not_used(tmp_path: Path) -> None:
    other = secret("uio-inspera", apiKey="k")
    other["metadata"]["namespace"] = "elsewhere"
    code, err = run(tmp_path, institution(), secret("uio-fs", username="u", password="p"), other)
    assert code == EXIT_INVALID
    assert "uio-inspera" in err


def test_plain_http_rejected(tmp_path: Path) -> None:
    doc = institution()
    doc["spec"]["fs"]["baseUrl"] = "http://fsws.usit.no"
    code, err = run(tmp_path, doc)
    assert code == EXIT_INVALID
    assert "spec.fs.baseUrl" in err


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: [unclosed\n", encoding="utf-8")
    err = io.StringIO()
    assert sync_command([path], out=io.StringIO(), err=err) == EXIT_INVALID
    assert "not valid YAML" in err.getvalue()


def test_no_institution(tmp_path: Path) -> None:
    code, err = run(tmp_path, secret("x", a="b"))
    assert code == EXIT_INVALID
    assert "no Institution" in err


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert "examsync" in result.output


def test_unreadable_state_file(tmp_path: Path) -> None:
    path = tmp_path / "inst.yaml"
    path.write_text(
        yaml.safe_dump_all(
            [institution(), secret("uio-fs", username="u", password="p"), secret("uio-inspera", apiKey="k")]
        ),
        encoding="utf-8",
    )
    state = tmp_path / "state.json"
    state.write_text("{not json", encoding="utf-8")
    err = io.StringIO()
    assert sync_command([path], state_path=state, out=io.StringIO(), err=err) == EXIT_INVALID
    assert "--state" in err.getvalue()
