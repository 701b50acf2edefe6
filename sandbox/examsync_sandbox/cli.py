"""`examsync-sandbox`: serve the sandbox, or run the demo (`make demo`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """examsync's sandbox: simulated FS, Inspera, WISEflow, Praktikportalen, Slack and Humio on loopback."""


@main.command()
@click.option(
    "--write-manifests",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write the sandbox's Institutions and Secrets into this folder.",
)
def serve(write_manifests: Path | None) -> None:
    """Serve the simulators on loopback until interrupted."""
    from examsync_sandbox.demo import serve_forever

    serve_forever(write_manifests)


@main.command()
def demo() -> None:
    """Start the sandbox, sync its institutions twice, show what happened (logs in .demo/)."""
    from examsync_sandbox.demo import main as run_demo

    run_demo()
