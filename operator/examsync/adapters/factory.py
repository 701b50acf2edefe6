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
from examsync.secrets import ResolvedSecrets
from examsync.spec import FsSpec, InsperaSpec, PraktikportalenSpec, WiseflowSpec


def fs_client(spec: FsSpec, secrets: ResolvedSecrets) -> FsClient:
    """FS with the Institution's account (keys username, password)."""
    field_path, name = "spec.fs.credentialsSecretRef", spec.credentialsSecretRef.name
    username, password = secrets.value(field_path, name, "username"), secrets.value(field_path, name, "password")
    return FsClient(spec.baseUrl, username, password)


def inspera_client(spec: InsperaSpec, secrets: ResolvedSecrets) -> InsperaClient:
    """Inspera through Gravitee when a gateway is set (its API key), else direct (a token exchange)."""
    if spec.gateway is not None:
        key = secrets.value("spec.inspera.gateway.apiKeySecretRef", spec.gateway.apiKeySecretRef.name, "apiKey")
        return InsperaClient.gateway(spec.gateway.baseUrl, key)
    assert spec.baseUrl is not None and spec.clientId is not None and spec.credentialsSecretRef is not None
    key = secrets.value("spec.inspera.credentialsSecretRef", spec.credentialsSecretRef.name, "apiKey")
    return InsperaClient.direct(spec.baseUrl, spec.clientId, key)


def wiseflow_client(spec: WiseflowSpec, secrets: ResolvedSecrets) -> WiseflowClient:
    """WISEflow with the Institution's OAuth2 client credentials (keys clientId, clientSecret)."""
    field_path, name = "spec.wiseflow.credentialsSecretRef", spec.credentialsSecretRef.name
    client_id = secrets.value(field_path, name, "clientId")
    client_secret = secrets.value(field_path, name, "clientSecret")
    return WiseflowClient(spec.baseUrl, client_id, client_secret)


def praktikportalen_client(spec: PraktikportalenSpec, secrets: ResolvedSecrets) -> PraktikportalenClient:
    """Praktikportalen with the Institution's API key."""
    key = secrets.value("spec.wiseflow.praktikportalen.credentialsSecretRef", spec.credentialsSecretRef.name,
                        "apiKey")
    return PraktikportalenClient(spec.baseUrl, key)
