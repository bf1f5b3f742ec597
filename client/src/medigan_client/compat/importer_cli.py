"""The ``medigan-client import-medigan DIR`` command: a medigan package's card, from its metadata.

The work is :func:`medigan_client.compat.importer.import_medigan_package`, imported when the
command runs so that the CLI starts without the card schema. Fields the hub requires and
medigan's metadata lacks are asked for by card field on a terminal, taken from ``--set
FIELD=VALUE``, or reported all at once (exit status 1, ``error: ...`` naming each field).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from medigan_client.api import Client
from medigan_client.errors import BadRequestError


def _ask(field: str, why: str) -> str | None:
    answer: str = click.prompt(
        f"{field} ({why}); empty to skip", default="", show_default=False, err=True
    )
    return answer or None


@click.command("import-medigan")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--namespace",
    metavar="NS",
    help="Namespace to publish in; default: yours on the hub (asked with the token).",
)
@click.option("--model-id", metavar="ID", help="The metadata entry, when it holds several.")
@click.option(
    "--set",
    "pairs",
    multiple=True,
    metavar="FIELD=VALUE",
    help="A card field the metadata lacks, e.g. provenance.training_data.0.licence=CC-BY-4.0 "
    "(short: licence=MIT, training_data.licence=...); repeatable.",
)
@click.option("--force", is_flag=True, help="Replace an existing card.json.")
@click.option(
    "--ask/--no-ask",
    default=None,
    help="Ask for missing fields (default: when stdin is a terminal).",
)
@click.pass_context
def import_medigan_command(
    ctx: click.Context,
    directory: Path,
    namespace: str | None,
    model_id: str | None,
    pairs: tuple[str, ...],
    force: bool,
    ask: bool | None,
) -> None:
    """Write DIR/card.json from a medigan package's metadata.json, ready for push."""
    from medigan_client.compat.importer import (
        hub_namespace,
        import_medigan_package,
        parse_answers,
    )

    client = ctx.find_object(Client)
    if client is None:  # a command invoked without the group callback
        raise BadRequestError("internal: the client was not configured")
    answers = parse_answers(pairs)
    interactive = sys.stdin.isatty() if ask is None else ask
    result = import_medigan_package(
        directory,
        namespace=namespace or hub_namespace(client),
        answers=answers,
        prompt=_ask if interactive else None,
        model_id=model_id,
        force=force,
    )
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(
        f"wrote {result.card_path}: {result.card.release_id} "
        f"(runtime {result.card.runtime.kind.value}); next: medigan-client push {directory}"
    )
