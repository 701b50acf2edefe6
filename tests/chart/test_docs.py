"""The guides: a troubleshooting section per condition reason the operator sets (and per reason of a
failed item), linked from the runbook; install, upgrade and uninstall say what a platform team
needs; every relative link in the docs resolves to a file and a heading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from examsync.api.conditions import ConditionReason
from examsync.domain.outcomes import Reason
from examsync.kube.handlers.lifecycle import FINALIZER
from tests.support.paths import REPO

DOCS = REPO / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), REPO / "README.md", REPO / "charts/examsync/README.md"]
RULES = REPO / "charts/examsync/files/rules/examsync.rules.yaml"
# set by the operator as the contract says (Security, rule 1), whichever module names it
CONTRACT_REASONS = {"SecretNotAllowed", "HostNotAllowed"}
# the reasons of a failed item (each needs a person's attention, so each has a section) and the
# others (a skipped item, a test written without a responsible), which the guide need not explain
FAILED_ITEM_REASONS = {Reason.INVALID_SOURCE_DATA, Reason.CONFLICT, Reason.UPSTREAM_ERROR, Reason.UNKNOWN_PERIOD}
OTHER_ITEM_REASONS = {
    Reason.MISSING_RESPONSIBLE,
    Reason.BEFORE_START_YEAR,
    Reason.PLACE_FILTERED,
    Reason.NO_CANDIDATES,
    Reason.DISCONNECTED,
    Reason.GONE,
    Reason.FLOW_CLOSED,
}


def condition_reasons() -> set[str]:
    """Every condition reason of examsync.api.conditions (CamelCase strings)."""
    return {str(value) for value in ConditionReason if re.fullmatch(r"[A-Z][A-Za-z]+", value)} | CONTRACT_REASONS


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^a-z0-9_-]", "", heading.strip().lower().replace(" ", "-"))


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.M)}


def links(page: Path) -> list[tuple[str, str]]:
    """(target path, anchor) of every relative markdown link on the page."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    found = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        found.append((path, anchor))
    return found


def test_there_are_condition_reasons_to_document() -> None:
    reasons = condition_reasons()
    assert {"Succeeded", "ItemsFailed", "SecretMissing", "Unauthorized", "InvalidSpec", "Suspended"} <= reasons
    assert "Ready" not in reasons and "True" not in reasons


@pytest.mark.parametrize("reason", sorted(condition_reasons()))
def test_every_condition_reason_has_a_troubleshooting_section(reason: str) -> None:
    assert reason.lower() in anchors(DOCS / "troubleshooting.md")
    # and the summary table links it
    assert f"| [{reason}](#{reason.lower()}) |" in (DOCS / "troubleshooting.md").read_text(encoding="utf-8")


def test_every_item_reason_is_placed_on_one_side() -> None:
    # a new reason must be placed: a failed item's gets a section below
    assert set(Reason) == FAILED_ITEM_REASONS | OTHER_ITEM_REASONS
    assert not FAILED_ITEM_REASONS & OTHER_ITEM_REASONS


@pytest.mark.parametrize("reason", sorted(str(r) for r in FAILED_ITEM_REASONS))
def test_every_failed_item_reason_has_a_troubleshooting_section(reason: str) -> None:
    assert reason.lower() in anchors(DOCS / "troubleshooting.md")


def test_the_runbook_links_the_reasons_of_its_alerts() -> None:
    runbook = (DOCS / "runbook.md").read_text(encoding="utf-8")
    failing = condition_reasons() - {"Succeeded", "Progressing", "Idle", "Suspended"}
    for reason in failing | {str(r) for r in FAILED_ITEM_REASONS}:
        assert f"troubleshooting.md#{reason.lower()}" in runbook, reason
    assert "troubleshooting.md" in runbook.split("## ", 1)[0], "the introduction points at the page"


def test_the_runbook_has_a_section_per_alert() -> None:
    names = [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert {n.lower() for n in names} <= anchors(DOCS / "runbook.md")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page: Path) -> None:
    for path, anchor in links(page):
        target = (page.parent / path).resolve() if path else page
        assert target.exists(), f"{page.name}: {path} does not exist"
        if anchor and target.suffix == ".md":
            assert anchor in anchors(target), f"{page.name}: #{anchor} is not a heading of {target.name}"


def test_the_link_check_catches_a_broken_anchor(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("# Title\n\n## Some Heading\n\nsee [x](#some-heading) and [y](#missing)\n", encoding="utf-8")
    found = links(page)
    assert found == [("", "some-heading"), ("", "missing")]
    assert "some-heading" in anchors(page) and "missing" not in anchors(page)


def test_uninstall_explains_the_order_and_the_finalizer() -> None:
    text = (DOCS / "uninstall.md").read_text(encoding="utf-8")
    assert FINALIZER in text
    assert text.index("kubectl delete inst") < text.index("helm uninstall")
    assert '"finalizers":null' in text
    assert "the-finalizer" in anchors(DOCS / "uninstall.md")
    assert FINALIZER in (DOCS / "troubleshooting.md").read_text(encoding="utf-8")


def test_upgrade_covers_crds_api_versions_and_renamed_alerts() -> None:
    text = (DOCS / "upgrade.md").read_text(encoding="utf-8")
    for name in (r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]):
        old = name.removeprefix("Examsync")
        assert f"| `{old}`" in text and f"`{name}`" in text, name
    for needed in ("v1alpha1", "storedVersions", "meta.helm.sh/release-name", "crds.install"):
        assert needed in text, needed


def test_install_covers_crds_peering_and_external_secrets() -> None:
    text = (DOCS / "install.md").read_text(encoding="utf-8")
    for needed in (
        "crds.install",
        "helm.sh/resource-policy: keep",
        "examples/external-secrets/",
        "replicas: 2",
        "SSL_CERT_FILE",
        "allowedHosts",
        "prometheusRule.additionalLabels",
    ):
        assert needed in text, needed
