"""Harness: the operator in-process against kmock's Kubernetes emulator, with the gaps a real API server
would not have filled in (resourceVersion, generation, uid, generateName, the status subresource,
JSON-patch `test` failures as 422, Secret stringData), and every write recorded for assertions.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import itertools
import os
import random
import signal
import socket
import string
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import jsonpatch
import kmock
import kopf
import yaml
from kmock._internal import apps, dicts, enums, k8s, rendering
from kubernetes.aio import client as kclient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from examsync.kube.api import KubeApi
from examsync.kube.commands import Institutions
from examsync.kube.config import OperatorConfig
from examsync.kube.main import build_registry
from examsync.kube.status import merge_patch
from examsync_sandbox import seed_no
from examsync_sandbox.server import Sandbox

INSTITUTIONS = kmock.resource("examsync.io", "v1alpha1", "institutions")
SECRETS = kmock.resource("", "v1", "secrets")
EVENTS = kmock.resource("", "v1", "events")
NAMESPACE = "examsync"


@dataclass
class Write:
    """One write request as the client sent it (before the emulator filled anything in)."""

    method: str
    resource: str
    namespace: str | None
    name: str | None
    subresource: str | None
    body: Any


class Emulator(k8s.KubernetesEmulator):
    """KubernetesEmulator plus what kopf and our status writes need of a real API server."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.writes: list[Write] = []
        # sees each status patch of an Institution as sent; returns an HTTP status to refuse it
        # with (a failed status write), or None to let it through
        self.status_hook: Callable[[Any], int | None] | None = None
        # an HTTP status to refuse every read of a Secret with (RBAC taken away, say), or None
        self.secret_read_refusal: int | None = None
        self._serial = asyncio.Lock()
        self._inflight: set[int] = set()
        self._versions = itertools.count(1000)
        declare = {
            "v1/namespaces": kmock.ResourceInfo(kind="Namespace", namespaced=False, verbs=["list", "watch", "get"]),
            "apiextensions.k8s.io/v1/customresourcedefinitions": kmock.ResourceInfo(
                kind="CustomResourceDefinition", namespaced=False, verbs=["list", "watch", "get"]
            ),
            "v1/events": kmock.ResourceInfo(kind="Event", namespaced=True, verbs=["create", "list", "get"]),
            "v1/secrets": kmock.ResourceInfo(kind="Secret", namespaced=True, verbs=["create", "get", "patch"]),
            "examsync.io/v1alpha1/institutions": kmock.ResourceInfo(
                kind="Institution",
                singular="institution",
                namespaced=True,
                shortnames={"inst"},
                verbs=["list", "watch", "get", "patch", "update", "create", "delete"],
                subresources={"status"},
            ),
        }
        for key, info in declare.items():
            self.resources[key] = info

    async def _handle(self, request: rendering.Request) -> Any:
        # kmock routes a request by looking it up among all it has kept, which grows quadratic:
        # keep only the requests still being served (routing must still find those)
        self._inflight.add(id(request))
        self._requests[:] = [r for r in self._requests if id(r) in self._inflight]
        try:
            return await self._serve(request)
        finally:
            self._inflight.discard(id(request))

    async def _serve(self, request: rendering.Request) -> Any:
        if request.resource == SECRETS and request.action == enums.action.FETCH and self.secret_read_refusal:
            error = k8s.KubernetesError(status=self.secret_read_refusal, reason="Forbidden", message="injected")
            return await self._render_error(error)
        if request.resource is None or request.action not in (enums.action.CREATE, enums.action.UPDATE):
            return await super()._handle(request)
        self.writes.append(
            Write(
                str(request.method.value).upper(),
                str(request.resource.plural),
                request.namespace,
                request.name,
                request.subresource,
                copy.deepcopy(request.data),
            )
        )
        if request.resource == INSTITUTIONS and request.subresource == "status" and self.status_hook is not None:
            refused = self.status_hook(request.data)
            if refused is not None:
                error = k8s.KubernetesError(status=refused, reason="InternalError", message="injected")
                return await self._render_error(error)
        async with self._serial:  # prepare and store as one step: no write slips in between
            try:
                if request.action == enums.action.CREATE:
                    self._prepare_create(request)
                else:
                    self._prepare_update(request)
            except k8s.KubernetesError as exc:
                return await self._render_error(exc)
            return await super()._handle(request)

    def _version(self) -> str:
        return str(next(self._versions))

    def _prepare_create(self, request: rendering.Request) -> None:
        data = request.data
        meta = data.setdefault("metadata", {})
        if request.namespace and not meta.get("namespace"):
            meta["namespace"] = request.namespace
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
            meta["name"] = meta["generateName"] + suffix
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        meta["resourceVersion"] = self._version()
        meta["generation"] = 1
        if request.resource == SECRETS and "stringData" in data:
            encoded = {k: base64.b64encode(str(v).encode()).decode() for k, v in data.pop("stringData").items()}
            data["data"] = {**(data.get("data") or {}), **encoded}

    def _prepare_update(self, request: rendering.Request) -> None:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return  # the base class answers 404
        old = copy.deepcopy(self.objects[key].raw)
        patch = request.data
        if isinstance(patch, list):
            try:
                new = jsonpatch.apply_patch(old, patch, in_place=False)
            except (jsonpatch.JsonPatchTestFailed, jsonpatch.JsonPatchConflict) as exc:
                raise k8s.KubernetesError(status=422, reason="Invalid", message=type(exc).__name__) from None
        elif str(request.method.value).upper() == "PUT":
            new = copy.deepcopy(patch)
        else:
            new = dict(dicts.patch_dict(copy.deepcopy(old), patch or {}))
        if request.resource == INSTITUTIONS:
            if request.subresource == "status":  # the status subresource changes status only
                new = {**old, "status": new.get("status")}
            else:  # the main resource never changes status
                new = {**new, "status": old.get("status")}
            if new.get("status") is None:
                new.pop("status", None)
        meta = new.setdefault("metadata", {})
        for fixed in ("uid", "creationTimestamp", "name", "namespace", "generation", "resourceVersion"):
            if fixed in old.get("metadata", {}):
                meta[fixed] = old["metadata"][fixed]
        if request.subresource is None and new.get("spec") != old.get("spec"):
            meta["generation"] = int(meta.get("generation") or 0) + 1
        if new != old:
            meta["resourceVersion"] = self._version()
        object.__setattr__(request, "data", merge_patch(old, new) or {})

    # -- helpers for tests ----------------------------------------------------------------------

    def institution(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
        return copy.deepcopy(self.objects[INSTITUTIONS, namespace, name].raw)

    def status(self, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
        return dict(self.institution(name, namespace).get("status") or {})

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        out = []
        for (resource, _, _), obj in list(self.objects.items()):
            if resource == EVENTS and not obj.deleted:
                raw = obj.raw
                if name is None or (raw.get("involvedObject") or {}).get("name") == name:
                    out.append(raw)
        return out


class LoopClock:
    """Wall-clock time that moves with the event loop's (looptime's) time."""

    def __init__(self) -> None:
        self.base = datetime.now(UTC)
        self.t0: float | None = None  # set on first use: looptime resets the loop's time per test

    def __call__(self) -> datetime:
        now = asyncio.get_running_loop().time()
        if self.t0 is None:
            self.t0 = now
        return self.base + timedelta(seconds=now - self.t0)


@dataclass
class Cluster:
    """The emulator with a client for the test's own requests."""

    emulator: Emulator
    url: str
    clock: LoopClock
    http: aiohttp.ClientSession

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/merge-patch+json"
    ) -> Any:
        headers = {"Content-Type": content_type}
        async with self.http.request(method, self.url + path, json=body, headers=headers) as resp:
            payload = await resp.json()
            if resp.status >= 400:
                raise AssertionError(f"{method} {path}: HTTP {resp.status}: {payload.get('message')}")
            return payload

    async def apply(self, manifest: dict[str, Any]) -> Any:
        meta = manifest["metadata"]
        ns = meta.get("namespace", NAMESPACE)
        if manifest["kind"] == "Secret":
            return await self.request("POST", f"/api/v1/namespaces/{ns}/secrets", manifest, "application/json")
        return await self.request(
            "POST", f"/apis/examsync.io/v1alpha1/namespaces/{ns}/institutions", manifest, "application/json"
        )

    async def patch(self, name: str, body: dict[str, Any], namespace: str = NAMESPACE) -> Any:
        return await self.request(
            "PATCH", f"/apis/examsync.io/v1alpha1/namespaces/{namespace}/institutions/{name}", body
        )

    async def delete(self, name: str, namespace: str = NAMESPACE) -> Any:
        return await self.request("DELETE", f"/apis/examsync.io/v1alpha1/namespaces/{namespace}/institutions/{name}")

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 60.0, step: float = 0.05) -> None:
        """Poll until ``predicate()`` holds (loop time: cheap under looptime)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(step)

    def kube_api(self) -> KubeApi:
        """The operator's Kubernetes client (examsync.kube.api), pointed at the emulator."""
        return KubeApi(kclient.ApiClient(kclient.Configuration(host=self.url)))

    def institutions(self) -> Institutions:
        """The day-2 commands' client (examsync.kube.commands), pointed at the emulator."""
        return Institutions(kclient.ApiClient(kclient.Configuration(host=self.url)))

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        for cond in self.emulator.status(name).get("conditions") or []:
            if cond.get("type") == type_:
                return dict(cond)
        return {}


@contextlib.asynccontextmanager
async def serve(emulator: Emulator) -> AsyncIterator[Cluster]:
    """The emulator served on loopback, with a loop clock and a client session of its own."""
    async with emulator, apps.Server(emulator) as server, aiohttp.ClientSession() as http:
        cluster = Cluster(emulator, str(server.url).rstrip("/"), LoopClock(), http)
        await cluster.request("GET", "/version")  # kopf waits on stop for tasks created after start otherwise
        yield cluster


class Operator:
    """kopf in-process on a fresh registry: ``async with operator(): ...`` inside the test.

    Start and stop it in the test's own task: on stop kopf cancels every task created after it
    started (a fixture's teardown task would be one of them).
    """

    def __init__(
        self, cluster: Cluster, registry_hook: Callable[[kopf.OperatorRegistry], None] | None = None, **overrides: Any
    ) -> None:
        self.cluster = cluster
        self.registry_hook = registry_hook  # adds handlers of the test's own to the operator's registry
        self.overrides = overrides
        self.stop_flag: asyncio.Event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Operator:
        cluster = self.cluster

        async def api_factory() -> KubeApi:
            return cluster.kube_api()

        options: dict[str, Any] = {
            "kopf_login": False,
            "api_factory": api_factory,
            "now": cluster.clock,
            "rng": random.Random(7),
            "grace_seconds": 5.0,
            "cancel_seconds": 2.0,
        }
        options.update(self.overrides)
        registry = build_registry(OperatorConfig(**options))
        if self.registry_hook is not None:
            self.registry_hook(registry)

        @kopf.on.login(registry=registry)
        def login(**_: Any) -> kopf.ConnectionInfo:
            return kopf.ConnectionInfo(server=cluster.url, insecure=True)

        settings = kopf.OperatorSettings()
        settings.watching.inactivity_timeout = 24 * 3600
        settings.scanning.disabled = True
        self.task = asyncio.create_task(
            kopf.operator(
                registry=registry,
                settings=settings,
                standalone=True,
                clusterwide=True,
                stop_flag=self.stop_flag,
            )
        )
        return self

    async def stop(self) -> None:
        self.stop_flag.set()
        if self.task is not None:
            async with asyncio.timeout(120):
                await self.task

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


OperatorFactory = Callable[..., Operator]


def uio(sandbox: Sandbox, *, clean: bool = True) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """UiO's Institution and Secrets; ``clean`` drops the seeded records meant to fail."""
    if clean:
        for case, (action, _) in seed_no.EXPECTED.items():
            if action == "failed":
                sandbox.world("fs").records.pop(seed_no.CASES[case], None)
    manifests = sandbox.manifests()
    inst = next(m for m in manifests if m["kind"] == "Institution" and m["metadata"]["name"] == "uio")
    secrets = [m for m in manifests if m["kind"] == "Secret" and m["metadata"]["name"].startswith("uio-")]
    return copy.deepcopy(inst), secrets


async def apply_all(cluster: Cluster, inst: dict[str, Any], secrets: list[dict[str, Any]]) -> None:
    for secret in secrets:
        await cluster.apply(secret)
    await cluster.apply(inst)


def runs(cluster: Cluster, name: str = "uio") -> int:
    return len(cluster.emulator.status(name).get("history") or [])


def idle_after(cluster: Cluster, n: int, name: str = "uio") -> bool:
    """``n`` runs finished and the status says no run is going."""
    return runs(cluster, name) >= n and cluster.condition(name, "Reconciling").get("status") == "False"


# -- `examsync run` as a separate process (tests that need the real command line, the bench) ----------


def write_kubeconfig(path: Path, url: str, namespace: str | None = None) -> Path:
    """A kubeconfig whose only cluster is the emulator at ``url`` (its context in ``namespace``)."""
    context: dict[str, str] = {"cluster": "emulator", "user": "test"}
    if namespace is not None:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": url}}],
        "users": [{"name": "test", "user": {"token": "test-token"}}],
        "contexts": [{"name": "emulator", "context": context}],
        "current-context": "emulator",
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def free_port() -> int:
    """A loopback TCP port free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OperatorProcess:
    """``examsync run --standalone -A`` in a child process, logged in through a kubeconfig pointing
    at the emulator. ``async with OperatorProcess(url, workdir) as proc:``; stderr goes to a file
    (``log_tail()``), so a chatty operator never blocks on a full pipe. Without ``log_level`` it
    logs warnings and errors only (``--quiet``)."""

    def __init__(
        self,
        url: str,
        workdir: Path,
        *args: str,
        metrics_port: int | None = None,
        log_level: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.workdir = workdir
        self.args = args
        self.log_level = log_level
        self.env = env or {}
        self.metrics_port = metrics_port if metrics_port is not None else free_port()
        self.log_path = workdir / "operator.log"
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("the operator process is not started")
        return self.proc.pid

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    async def start(self) -> OperatorProcess:
        kubeconfig = write_kubeconfig(self.workdir / "kubeconfig", self.url)
        # the simulators are on loopback: the operator reaches them only through a literal entry
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "EXAMSYNC_ALLOWED_HOSTS": "127.0.0.1", **self.env}
        exe = Path(sys.executable).with_name("examsync")
        verbosity = ["--log-level", self.log_level] if self.log_level else ["--quiet"]
        with self.log_path.open("wb") as log:  # the child keeps its own descriptor
            self.proc = await asyncio.create_subprocess_exec(
                str(exe),
                "run",
                "--standalone",
                "-A",
                *verbosity,
                "--metrics-port",
                str(self.metrics_port),
                *self.args,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    async def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; the exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(timeout):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        return proc.returncode

    async def __aenter__(self) -> OperatorProcess:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


async def examsync_cli(*args: str, kubeconfig: Path, timeout: float = 120.0) -> CliResult:
    """``examsync ARGS`` as a child process logged in through ``kubeconfig`` (asynchronously: the
    sandbox and the emulator serve from this test's event loop meanwhile)."""
    exe = Path(sys.executable).with_name("examsync")
    proc = await asyncio.create_subprocess_exec(
        str(exe),
        *args,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return CliResult(proc.returncode, out.decode(), err.decode())


# -- /metrics of an operator process ---------------------------------------------------------------


def parse_metrics(text: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def select(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in select(samples, name, **labels))


async def scrape(http: aiohttp.ClientSession, url: str) -> list[Sample]:
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
        assert resp.status == 200
        return parse_metrics(await resp.text())


async def scrape_until(
    http: aiohttp.ClientSession,
    proc: OperatorProcess,
    done: Callable[[list[Sample]], bool],
    timeout: float = 60.0,
) -> list[Sample]:
    """Scrape every 0.2 s until ``done`` holds (the server may not be up yet at first)."""
    samples: list[Sample] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                assert proc.running(), f"the operator exited: {proc.log_tail()}"
                try:
                    samples = await scrape(http, proc.metrics_url)
                except aiohttp.ClientConnectionError:
                    samples = []
                else:
                    if done(samples):
                        return samples
                await asyncio.sleep(0.2)
    except TimeoutError:
        names = sorted({s.name for s in samples if s.name.startswith("examsync_")})
        raise AssertionError(f"metrics never got there; examsync series: {names}; log: {proc.log_tail()}") from None
