"""A valid Institution spec (UiO on FS and Inspera) for tests that change one part of it."""

from __future__ import annotations

from typing import Any


def uio_spec(**over: Any) -> dict[str, Any]:
    """UiO's spec with FS and Inspera, top-level fields replaced by `over`."""
    spec: dict[str, Any] = {
        "shortName": "UiO",
        "fs": {
            "baseUrl": "https://fsws.usit.no",
            "institutionNumber": "185",
            "startYear": 2025,
            "credentialsSecretRef": {"name": "uio-fs"},
        },
        "inspera": {
            "enabled": True,
            "baseUrl": "https://uio.inspera.no/api",
            "clientId": "uio.inspera.no",
            "credentialsSecretRef": {"name": "uio-inspera"},
        },
    }
    spec.update(over)
    return spec
