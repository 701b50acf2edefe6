"""The one place that builds upstream clients from an Institution's spec: one function per system,
each taking its spec section and the run's resolved Secrets.

Each reads the Secret values it needs before it builds its client; a missing key raises
SecretMissing naming the field and the key (the runner checks every required key before any
pipeline is built). Building a client opens no connection.
"""

from __future__ import annotations

from examsync.adapters.fs.client import FsClient
from examsync.adapters.inspera.client import InsperaClient
from examsync.adapters.praktikportalen.client import PraktikportalenClient
from examsync.adapters.wiseflow.client import WiseflowClient
from examsync.api.spec import FsSpec, InsperaSpec, PraktikportalenSpec, WiseflowSpec
from examsync.credentials import ResolvedSecrets


def fs_client(spec: FsSpec, secrets: ResolvedSecrets) -> FsClient:
    """FS with the Institution's account (keys username, password)."""
    ref = spec.credentialsSecretRef
    username, password = secrets.value(ref, "username"), secrets.value(ref, "password")
    return FsClient(spec.baseUrl, username, password)


def inspera_client(spec: InsperaSpec, secrets: ResolvedSecrets) -> InsperaClient:
    """Inspera through Gravitee when a gateway is set (its API key), else direct (a token exchange)."""
    if spec.gateway is not None:
        key = secrets.value(spec.gateway.apiKeySecretRef, "apiKey")
        return InsperaClient.gateway(spec.gateway.baseUrl, key)
    assert spec.baseUrl is not None and spec.clientId is not None and spec.credentialsSecretRef is not None
    key = secrets.value(spec.credentialsSecretRef, "apiKey")
    return InsperaClient.direct(spec.baseUrl, spec.clientId, key)


def wiseflow_client(spec: WiseflowSpec, secrets: ResolvedSecrets) -> WiseflowClient:
    """WISEflow with the Institution's OAuth2 client credentials (keys clientId, clientSecret)."""
    ref = spec.credentialsSecretRef
    client_id, client_secret = secrets.value(ref, "clientId"), secrets.value(ref, "clientSecret")
    return WiseflowClient(spec.baseUrl, client_id, client_secret)


def praktikportalen_client(spec: PraktikportalenSpec, secrets: ResolvedSecrets) -> PraktikportalenClient:
    """Praktikportalen with the Institution's API key."""
    return PraktikportalenClient(spec.baseUrl, secrets.value(spec.credentialsSecretRef, "apiKey"))
