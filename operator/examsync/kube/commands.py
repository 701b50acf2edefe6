"""Day-2 commands on one Institution: `examsync reconcile`, `examsync suspend`, `examsync resume`.

They find the cluster as `examsync run` does (the pod's service account, else $KUBECONFIG or
~/.kube/config) and, without ``-n``, act in that login's namespace. ``reconcile --wait`` watches
the object (no polling while the watch holds) until the operator has handled the request and its
run has finished, then exits as the run ended: 0 Ready, 1 failed items (or a source that could
not be read), 2 Stalled, suspended, or no answer within ``--timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import click
from kubernetes.aio import client as kclient
from kubernetes.aio import watch as kwatch
from kubernetes.aio.config import ConfigException

from examsync.api.conditions import Condition, ConditionReason, ConditionStatus, ConditionType, get_condition
from examsync.api.spec import API_GROUP, API_VERSION, PLURAL, format_duration, parse_duration
from examsync.api.status import InstitutionStatus
from examsync.kube.api import ApiException, load_configuration
from examsync.kube.run_requests import REQUESTED_AT
from examsync.settings import Settings, SettingsError

EXIT_READY, EXIT_FAILED, EXIT_NOT_DONE = 0, 1, 2
DEFAULT_TIMEOUT = "5m"
POLL_SECONDS = 2.0  # only when the API refuses to watch
WATCH_SECONDS = 60  # the server ends each watch after this; the command watches again
REWATCH_SECONDS = 1.0


class CommandError(Exception):
    """What the command could not do, said to the user as it is (exit 2)."""


class Institutions:
    """The few calls the commands make on Institutions."""

    def __init__(self, api_client: Any) -> None:
        self._client = api_client
        self._custom = kclient.CustomObjectsApi(api_client)

    @classmethod
    async def from_environment(cls) -> tuple[Institutions, str]:
        """A client logged in as `examsync run` would be, and that login's namespace."""
        try:
            configuration, namespace = await load_configuration(Settings.load().kubeconfig)
        except SettingsError as exc:
            raise CommandError(str(exc)) from None
        except (ConfigException, OSError) as exc:
            raise CommandError(f"no cluster to talk to: {exc}") from None
        return cls(kclient.ApiClient(configuration)), namespace

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            obj = await self._custom.get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, name)
        except ApiException as exc:
            raise _api_error(exc, namespace, name) from None
        return _as_object(obj)

    async def patch(self, namespace: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the object (spec, metadata; never status)."""
        try:
            obj = await self._custom.patch_namespaced_custom_object(
                API_GROUP, API_VERSION, namespace, PLURAL, name, dict(body)
            )
        except ApiException as exc:
            raise _api_error(exc, namespace, name) from None
        return _as_object(obj)

    async def versions(self, namespace: str, name: str) -> AsyncGenerator[dict[str, Any], None]:
        """The object as it is now, then each new version of it, until the caller stops."""
        while True:  # each watch starts with the object as it is, so a new one misses nothing
            try:
                async with kwatch.Watch() as watcher:  # type: ignore[no-untyped-call]
                    events = watcher.stream(
                        self._custom.list_namespaced_custom_object,
                        API_GROUP,
                        API_VERSION,
                        namespace,
                        PLURAL,
                        field_selector=f"metadata.name={name}",
                        timeout_seconds=WATCH_SECONDS,
                    )
                    async for event in events:
                        obj = event.get("object") if isinstance(event, dict) else None
                        if not isinstance(obj, dict) or (obj.get("metadata") or {}).get("name") != name:
                            continue  # a server that ignores the field selector
                        if event.get("type") == "DELETED":
                            raise CommandError(f"Institution {namespace}/{name} was deleted")
                        yield obj
                await asyncio.sleep(REWATCH_SECONDS)  # the server ended the watch: soon another
            except ApiException as exc:
                if exc.status not in (401, 403, 404, 405):
                    raise _api_error(exc, namespace, name) from None
                break  # no watch here (not allowed, or not served): look every few seconds instead
        while True:
            yield await self.get(namespace, name)
            await asyncio.sleep(POLL_SECONDS)

    async def close(self) -> None:
        await self._client.close()


def _as_object(obj: object) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise CommandError("the Kubernetes API answered something that is not an object")
    return obj


def _api_error(exc: ApiException, namespace: str, name: str) -> CommandError:
    if exc.status == 404:
        return CommandError(f"Institution {namespace}/{name} not found")
    return CommandError(f"the Kubernetes API refused: HTTP {exc.status} {exc.reason}")


@dataclass(frozen=True)
class Outcome:
    code: int
    message: str


def _suspended(obj: Mapping[str, Any]) -> bool:
    return (obj.get("spec") or {}).get("suspend") is True


def _said(condition: Condition | None) -> str:
    return f"({condition.reason}): {condition.message}" if condition is not None else "(no condition)"


def outcome(obj: Mapping[str, Any], value: str) -> Outcome | None:
    """How the run requested with ``value`` ended, as far as ``obj`` shows; None: not yet."""
    meta = obj.get("metadata") or {}
    key = f"{meta.get('namespace')}/{meta.get('name')}"
    if _suspended(obj):
        return Outcome(EXIT_NOT_DONE, f"{key} is suspended: no run (`examsync resume` first)")
    status = InstitutionStatus.load(obj.get("status"))
    stalled = get_condition(status.conditions, ConditionType.STALLED)
    stalled_now = stalled is not None and stalled.status is ConditionStatus.TRUE
    if (
        stalled_now
        and stalled is not None
        and stalled.reason is ConditionReason.INVALID_SPEC
        and stalled.observedGeneration == meta.get("generation")
    ):
        # no run happens until the spec changes: waiting would only run into the timeout
        return Outcome(EXIT_NOT_DONE, f"{key} Stalled {_said(stalled)}")
    reconciling = get_condition(status.conditions, ConditionType.RECONCILING)
    if status.lastHandledRequestedAt != value or (
        reconciling is not None and reconciling.status is ConditionStatus.TRUE
    ):
        return None
    if stalled_now:
        return Outcome(EXIT_NOT_DONE, f"{key} Stalled {_said(stalled)}")
    ready = get_condition(status.conditions, ConditionType.READY)
    if ready is not None and ready.status is ConditionStatus.TRUE:
        return Outcome(EXIT_READY, f"{key} Ready: {ready.message}")
    return Outcome(EXIT_FAILED, f"{key} not Ready {_said(ready)}")


def request_value(now: datetime) -> str:
    """The annotation's value: the time, to the microsecond, in RFC 3339 (as Flux writes it)."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


Echo = Callable[[str], None]


async def reconcile(
    api: Institutions,
    namespace: str,
    name: str,
    *,
    wait: bool,
    timeout: timedelta,
    out: Echo,
    err: Echo,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    obj = await api.get(namespace, name)
    if _suspended(obj):
        err(f"{namespace}/{name} is suspended: no run is requested (`examsync resume {name} -n {namespace}` first)")
        return EXIT_NOT_DONE
    value = request_value(now())
    await api.patch(namespace, name, {"metadata": {"annotations": {REQUESTED_AT: value}}})
    out(f"{namespace}/{name}: run requested ({REQUESTED_AT}={value})")
    if not wait:
        return EXIT_READY
    try:
        async with asyncio.timeout(timeout.total_seconds()), contextlib.aclosing(api.versions(namespace, name)) as seen:
            async for version in seen:
                ended = outcome(version, value)
                if ended is not None:
                    (out if ended.code == EXIT_READY else err)(ended.message)
                    return ended.code
    except TimeoutError:
        pass
    err(f"{namespace}/{name}: the request was not handled within {format_duration(timeout)} (is the operator running?)")
    return EXIT_NOT_DONE


async def set_suspend(api: Institutions, namespace: str, name: str, suspend: bool, *, out: Echo) -> int:
    await api.patch(namespace, name, {"spec": {"suspend": suspend}})
    out(f"{namespace}/{name} {'suspended' if suspend else 'resumed'}")
    return EXIT_READY


async def _with_api(namespace: str | None, act: Callable[[Institutions, str], Awaitable[int]]) -> int:
    try:
        api, default = await Institutions.from_environment()
    except CommandError as exc:
        click.echo(f"Error: {exc}", err=True)
        return EXIT_NOT_DONE
    try:
        return await act(api, namespace or default)
    except CommandError as exc:
        click.echo(f"Error: {exc}", err=True)
        return EXIT_NOT_DONE
    except (aiohttp.ClientError, OSError) as exc:
        click.echo(f"Error: the Kubernetes API could not be reached ({type(exc).__name__})", err=True)
        return EXIT_NOT_DONE
    finally:
        await api.close()


def _timeout(_: click.Context, __: click.Parameter, value: str) -> timedelta:
    try:
        parsed = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if parsed <= timedelta(0):
        raise click.BadParameter("must be more than 0s")
    return parsed


_NAMESPACE = click.option("-n", "--namespace", help="The Institution's namespace (default: the login's namespace).")


@click.command("reconcile")
@click.argument("name")
@_NAMESPACE
@click.option("--wait", is_flag=True, help="Wait for the run to finish; exit 0 Ready, 1 failed items, 2 otherwise.")
@click.option(
    "--timeout",
    default=DEFAULT_TIMEOUT,
    show_default=True,
    callback=_timeout,
    help="With --wait: give up after this long (Go-style duration: 90s, 15m).",
)
def reconcile_command(name: str, namespace: str | None, wait: bool, timeout: timedelta) -> None:
    """Ask the operator to run the Institution NAME now (sets examsync.io/requested-at)."""

    async def act(api: Institutions, ns: str) -> int:
        return await reconcile(
            api, ns, name, wait=wait, timeout=timeout, out=click.echo, err=lambda m: click.echo(m, err=True)
        )

    raise SystemExit(asyncio.run(_with_api(namespace, act)))


def _suspend_command(suspend: bool) -> click.Command:
    verb = "suspend" if suspend else "resume"

    @click.command(verb)
    @click.argument("name")
    @_NAMESPACE
    def command(name: str, namespace: str | None) -> None:
        async def act(api: Institutions, ns: str) -> int:
            return await set_suspend(api, ns, name, suspend, out=click.echo)

        raise SystemExit(asyncio.run(_with_api(namespace, act)))

    command.help = (
        "Stop the Institution NAME's runs (spec.suspend: true); status is still written."
        if suspend
        else "Let the Institution NAME run again (spec.suspend: false)."
    )
    return command


suspend_command = _suspend_command(True)
resume_command = _suspend_command(False)
