"""The hashed lock files in requirements/ still satisfy pyproject.toml (else: `make lock`).

`make venv`, CI and the image install only from them, with `pip install --require-hashes`, so a
dependency added or raised in pyproject.toml but not locked would never be installed.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.paths import REPO

REQUIREMENTS = REPO / "requirements"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
# the interpreters the project supports and the lock is resolved for (--universal)
ENVIRONMENTS = [{"python_version": v, "python_full_version": f"{v}.0"} for v in ("3.11", "3.12", "3.13")]


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    marker: Marker | None
    hashes: tuple[str, ...]

    def applies(self, env: dict[str, str]) -> bool:
        return self.marker is None or self.marker.evaluate(env)


def read_lock(path: Path) -> list[Pin]:
    """`name==version [; marker] \\ --hash=sha256:... ...` entries (comments dropped)."""
    text = re.sub(r"\s*#[^\n]*", "", path.read_text(encoding="utf-8"))
    pins = []
    for entry in re.sub(r"\\\n", " ", text).splitlines():
        if not entry.strip():
            continue
        hashes = tuple(re.findall(r"--hash=(sha256:[0-9a-f]{64})", entry))
        requirement = Requirement(re.sub(r"\s*--hash=\S+", "", entry).strip())
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{path.name}: {entry.split()[0]} is not pinned with =="
        pins.append(Pin(canonicalize_name(requirement.name), Version(spec.version), requirement.marker, hashes))
    return pins


def wanted(*extras: str) -> list[Requirement]:
    deps = list(PYPROJECT["project"]["dependencies"])
    for extra in extras:
        deps += PYPROJECT["project"]["optional-dependencies"][extra]
    return [Requirement(d) for d in deps]


def unsatisfied(lock: Path, requirements: list[Requirement]) -> list[str]:
    pins = read_lock(lock)
    problems = []
    for req in requirements:
        for env in ENVIRONMENTS:
            if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
                continue
            found = [p for p in pins if p.name == canonicalize_name(req.name) and p.applies(env)]
            if not found:
                problems.append(f"{req.name} (Python {env['python_version']}) is not in {lock.name}")
            problems += [
                f"{lock.name}: {p.name}=={p.version} does not satisfy {req}"
                for p in found
                if not req.specifier.contains(p.version, prereleases=True)
            ]
    return sorted(set(problems))


@pytest.mark.parametrize(("lock", "extras"), [("dev.txt", ("dev",)), ("runtime.txt", ())])
def test_lock_satisfies_pyproject(lock: str, extras: tuple[str, ...]) -> None:
    assert unsatisfied(REQUIREMENTS / lock, wanted(*extras)) == [], "run `make lock`"


def test_build_lock_satisfies_the_build_requirements() -> None:
    build = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]] + [Requirement("pip")]
    assert unsatisfied(REQUIREMENTS / "build.txt", build) == [], "run `make lock`"


@pytest.mark.parametrize("lock", ["dev.txt", "runtime.txt", "build.txt"])
def test_every_locked_package_is_pinned_with_hashes(lock: str) -> None:
    pins = read_lock(REQUIREMENTS / lock)
    assert pins
    assert [p.name for p in pins if not p.hashes] == []


def test_the_image_gets_the_versions_the_tests_ran_with() -> None:
    dev = {(p.name, p.marker and str(p.marker)): p.version for p in read_lock(REQUIREMENTS / "dev.txt")}
    runtime = {(p.name, p.marker and str(p.marker)): p.version for p in read_lock(REQUIREMENTS / "runtime.txt")}
    assert {k: v for k, v in runtime.items() if dev.get(k) != v} == {}


def test_a_lock_missing_or_below_a_requirement_is_caught(tmp_path: Path) -> None:
    """The check itself: a pyproject asking for more than the lock holds fails it."""
    lock = tmp_path / "lock.txt"
    lock.write_text("httpx==0.27.0 \\\n    --hash=sha256:" + "0" * 64 + "\n", encoding="utf-8")
    assert unsatisfied(lock, [Requirement("httpx>=0.27")]) == []
    assert unsatisfied(lock, [Requirement("httpx>=0.28")]) == ["lock.txt: httpx==0.27.0 does not satisfy httpx>=0.28"]
    assert unsatisfied(lock, [Requirement("rich>=13")]) == [
        f"rich (Python {v}) is not in lock.txt" for v in ("3.11", "3.12", "3.13")
    ]
