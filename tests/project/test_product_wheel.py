"""The product's wheel holds no sandbox: simulators, seeds and made-up identities are the
examsync-sandbox distribution's (sandbox/), never examsync's."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.paths import REPO

SANDBOX_NAMES = re.compile(r"simulator|sim_world|seed|sandbox")


def test_the_product_wheel_holds_no_simulator_seed_or_sandbox_module(tmp_path: Path) -> None:
    # built from what the image's build gets (pyproject.toml, README.md, operator/), as it builds it
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "operator", source / "operator", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-cache-dir",
            "--wheel-dir",
            str(wheels),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("examsync-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        modules = {name: archive.read(name).decode("utf-8") for name in names if name.endswith(".py")}

    assert "examsync/adapters/upstream/client.py" in names  # the product itself is there
    assert [name for name in names if SANDBOX_NAMES.search(name)] == []
    assert not any(name.startswith("examsync_sandbox") for name in names)
    # nothing in the product serves HTTP with aiohttp (every simulator does) or imports the sandbox
    serving = [name for name, text in modules.items() if re.search(r"from aiohttp import web|aiohttp\.web", text)]
    assert serving == []
    assert [name for name, text in modules.items() if "examsync_sandbox" in text] == []
