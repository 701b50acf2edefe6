"""The upstream host allowlist's rules (contracts/README.md, Security rule 1), as a pure unit."""

from __future__ import annotations

import pytest

from examsync.hosts import DEFAULT_ENTRIES, HostAllowlist, HostRefused, InvalidEntry, check_urls


def allowed(entries: list[str], url: str, *, loopback: bool = False) -> bool:
    return HostAllowlist.parse(entries, allow_loopback=loopback).refusal(url) is None


def test_empty_allowlist_is_the_default_list_never_every_host() -> None:
    default = HostAllowlist.parse([])
    assert default.default and default == HostAllowlist.from_setting("", [])
    assert default == HostAllowlist.from_setting(" , ,", [])
    assert {str(e) for e in default.entries} == set(DEFAULT_ENTRIES)
    for url in (
        "https://fsws.usit.no",
        "https://fs-test.uio.no/x",
        "https://uio.inspera.no/api",
        "https://ntnu.inspera.com",
        "https://europe-api.wiseflow.net/v1",
        "https://cloud.humio.com",
        "https://hooks.slack.com/services/T/B/x",
    ):
        assert default.refusal(url) is None, url
    for url in (
        "https://evil.example",
        "https://fsws.usit.no.evil.example",
        "https://evilinspera.no",
        "https://inspera.no",
        "http://127.0.0.1:8080",
        "http://localhost",
        "http://[::1]:80",
    ):
        assert default.refusal(url) is not None, url


def test_a_non_empty_list_replaces_the_default() -> None:
    custom = HostAllowlist.from_setting("gw.intark.no", ["pp.example.dk"])
    assert not custom.default
    assert custom.refusal("https://gw.intark.no/inspera") is None and custom.refusal("https://pp.example.dk") is None
    assert custom.refusal("https://fsws.usit.no") is not None


def test_wildcard_needs_at_least_one_more_label() -> None:
    entries = ["*.inspera.no"]
    assert allowed(entries, "https://uio.inspera.no")
    assert allowed(entries, "https://a.b.inspera.no")
    assert not allowed(entries, "https://inspera.no")
    assert not allowed(entries, "https://xinspera.no")


def test_hosts_compare_case_insensitively() -> None:
    assert allowed(["FSWS.Usit.NO"], "https://fsws.usit.no")
    assert allowed(["fsws.usit.no"], "https://FSWS.USIT.NO/x")
    assert allowed(["*.INSPERA.no"], "https://UiO.Inspera.No")


def test_host_port_allows_only_that_port_bare_host_any() -> None:
    assert allowed(["fsws.usit.no:8443"], "https://fsws.usit.no:8443")
    assert not allowed(["fsws.usit.no:8443"], "https://fsws.usit.no")  # 443 implied
    assert allowed(["fsws.usit.no:443"], "https://fsws.usit.no/x")
    assert allowed(["fsws.usit.no"], "https://fsws.usit.no:9999")
    assert allowed(["*.inspera.no:443"], "https://uio.inspera.no")
    assert not allowed(["*.inspera.no:443"], "https://uio.inspera.no:444")


def test_a_host_with_a_trailing_dot_never_matches() -> None:
    assert not allowed(["fsws.usit.no"], "https://fsws.usit.no./x")
    assert not allowed(["*.inspera.no"], "https://uio.inspera.no.")
    assert not allowed([], "http://localhost.:80", loopback=True)
    assert "dot" in (HostAllowlist.parse([]).refusal("https://fsws.usit.no.") or "")


def test_ip_literals() -> None:
    assert allowed(["10.1.2.3"], "https://10.1.2.3/x")
    assert not allowed(["10.1.2.3"], "https://10.1.2.4/x")
    assert allowed(["[2001:db8::1]:8443"], "https://[2001:db8::1]:8443")
    assert allowed(["2001:db8::1"], "https://[2001:DB8:0::1]")
    with pytest.raises(InvalidEntry):
        HostAllowlist.parse(["*.1.2.3"])  # wildcards are for names only
    # numeric forms the C library reads as IPv4 are not names that could match anything
    assert not allowed(["127.0.0.1"], "https://127.1")
    assert not allowed([], "https://127.1", loopback=True)
    assert not allowed([], "https://2130706433", loopback=False)


def test_loopback_only_by_literal_entry_or_the_flag() -> None:
    assert not allowed(["*.app.localhost"], "http://a.app.localhost:80")  # a wildcard never matches loopback
    assert allowed(["a.app.localhost"], "http://a.app.localhost:80")
    assert allowed(["localhost"], "http://localhost:8080")
    assert not allowed(["localhost"], "http://127.0.0.1:8080")
    assert allowed(["127.0.0.1"], "http://127.0.0.1:8080")
    assert not allowed(["127.0.0.1"], "http://127.0.0.2:8080")
    assert allowed(["127.0.0.1:8080"], "http://127.0.0.1:8080")
    assert not allowed(["127.0.0.1:8080"], "http://127.0.0.1:8081")
    assert allowed(["::1"], "http://[::1]:1")
    assert not allowed(["127.0.0.1"], "http://[::ffff:127.0.0.2]:1")
    for url in (
        "http://127.0.0.1:1",
        "http://127.9.9.9",
        "http://[::1]:2",
        "http://localhost:3",
        "http://[::ffff:127.0.0.1]:4",
    ):
        assert not allowed([], url), url
        assert allowed([], url, loopback=True), url
        assert allowed(["fsws.usit.no"], url, loopback=True), url


def test_invalid_entries_are_refused_at_start() -> None:
    for entry in (
        "https://fsws.usit.no",
        "fsws.usit.no.",
        "*",
        "*.no",
        "*.localhost",
        "fs ws.no",
        "a..b",
        "host:0",
        "host:99999",
        "host:x",
        "[::1",
        "*.*.no",
        "fsws.usit.no/path",
        "user@host",
    ):
        with pytest.raises(InvalidEntry):
            HostAllowlist.parse([entry])


def test_a_url_that_does_not_parse_or_names_no_valid_host_is_refused() -> None:
    default = HostAllowlist.parse([], allow_loopback=True)
    for url in ("https://", "not a url", "https://fsws.usit.no:99999", "https://ex%61mple.no", "https://bücher.no"):
        assert default.refusal(url) is not None, url


def test_check_urls_names_every_refused_field_and_host() -> None:
    with pytest.raises(HostRefused) as refused:
        check_urls(
            HostAllowlist.parse([]),
            [
                ("spec.fs.baseUrl", "https://fsws.usit.no"),
                ("spec.audit.humio.url", "https://logs.evil.example"),
                ("spec.wiseflow.baseUrl", "http://127.0.0.1:9000"),
            ],
        )
    assert [field for field, _ in refused.value.problems] == ["spec.audit.humio.url", "spec.wiseflow.baseUrl"]
    assert "logs.evil.example" in str(refused.value) and "127.0.0.1:9000" in str(refused.value)
    assert refused.value.reason == "HostNotAllowed"


def test_verdicts_stay_right_however_many_hosts_are_asked_about() -> None:
    """Verdicts are remembered per (scheme, host, port), within a bound."""
    allowlist = HostAllowlist.parse(["*.inspera.no", "fsws.usit.no:443"])
    for n in range(3000):
        assert not allowlist.refusal(f"https://i{n}.inspera.no/api")
        assert allowlist.refusal(f"https://i{n}.inspera.no.evil.example/api")
        assert not allowlist.refusal("https://fsws.usit.no/x") and allowlist.refusal("https://fsws.usit.no:8443/x")
        assert allowlist.refusal("http://fsws.usit.no/x")  # port 80
    assert len(allowlist._verdicts) <= 1024
    assert allowlist == HostAllowlist.parse(["*.inspera.no", "fsws.usit.no:443"])  # what it remembers is no part of it
