"""The ``medigan-client cache`` commands: ``ls``, ``verify`` and ``prune`` over the local cache.

Each prints one item per line, tab-separated, kind first (``--json`` prints one JSON document
instead); summaries go to stderr. ``verify`` exits with status 1 while a problem remains.
The work is done by :mod:`medigan_client.cache_admin`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from medigan_client.api import Client
from medigan_client.cache import Cache
from medigan_client.cache_admin import (
    CacheEntry,
    format_size,
    list_cache,
    parse_size,
    prune_cache,
    verify_cache,
)
from medigan_client.errors import BadRequestError

cache_app = typer.Typer(
    name="cache",
    help="Inspect, verify and prune the local cache (catalogues, releases, venvs, data sets).",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]


def _cache(ctx: typer.Context) -> Cache:
    client = ctx.obj
    if not isinstance(client, Client):  # a command invoked without the group callback
        raise BadRequestError("internal: the client was not configured")
    return Cache(client.settings.cache_dir)


def _entry_line(entry: CacheEntry) -> str:
    details: list[str] = []
    if entry.kind == "release":
        details.append("package extracted" if entry.package_extracted else "not extracted")
        details.extend(
            f"{artifact.filename} sha256 {artifact.recorded_sha256 or 'unrecorded'}"
            for artifact in entry.artifacts
        )
    return "\t".join(
        [
            entry.kind,
            entry.name,
            format_size(entry.size_bytes),
            entry.last_used_iso or "-",
            "; ".join(details),
        ]
    ).rstrip("\t")


@cache_app.command("ls")
def list_command(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List every cached item with its size and last use, and the total."""
    listing = list_cache(_cache(ctx))
    if as_json:
        typer.echo(json.dumps(listing.to_json(), indent=2))
        return
    for entry in listing.entries:
        typer.echo(_entry_line(entry))
    typer.echo(f"total\t{len(listing.entries)} items\t{format_size(listing.total_bytes)}")


@cache_app.command("verify")
def verify_command(
    ctx: typer.Context,
    fix: Annotated[
        bool, typer.Option("--fix", help="Remove damaged items so that the next use fetches them.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Re-hash cached artifacts and check extracted packages; exit 1 if a problem remains."""
    report = verify_cache(_cache(ctx), fix=fix)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        for problem in report.problems:
            state = "removed" if problem.fixed else problem.status
            typer.echo(f"{state}\t{problem.kind}\t{problem.name}\t{problem.reason}")
        for busy in report.busy:
            typer.echo(f"busy\t{busy}")
        remaining = sum(1 for problem in report.problems if not problem.fixed)
        typer.echo(
            f"checked {report.checked} items: {len(report.problems)} problem(s), "
            f"{remaining} left" + (f", {len(report.busy)} busy" if report.busy else ""),
            err=True,
        )
    if not report.ok:
        raise typer.Exit(1)


@cache_app.command("prune")
def prune_command(
    ctx: typer.Context,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than", min=0, help="Remove items not used for DAYS days.", metavar="DAYS"
        ),
    ] = None,
    max_size: Annotated[
        str | None,
        typer.Option(
            "--max-size",
            help="Remove least recently used items until the cache fits, e.g. 20G or 500M.",
            metavar="SIZE",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Remove the cached releases of ns/name[@version]."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be removed.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove partial downloads, stale temporary files, and the items the options select.

    Items another process is downloading, extracting or running from are kept and listed.
    """
    report = prune_cache(
        _cache(ctx),
        older_than_days=older_than,
        max_size_bytes=parse_size(max_size) if max_size is not None else None,
        model=model,
        dry_run=dry_run,
    )
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    for decision in report.removed:
        entry = decision.entry
        typer.echo(
            f"{verb}\t{entry.kind}\t{entry.name}\t{format_size(entry.size_bytes)}\t"
            f"{decision.reason}"
        )
    for decision in report.skipped:
        typer.echo(f"skipped\t{decision.entry.kind}\t{decision.entry.name}\t{decision.reason}")
    typer.echo(
        f"{verb} {len(report.removed)} item(s), {format_size(report.freed_bytes)}; "
        f"skipped {len(report.skipped)}",
        err=True,
    )
