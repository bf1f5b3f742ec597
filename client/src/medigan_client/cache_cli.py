"""The ``medigan-client cache`` commands: ``ls``, ``verify`` and ``prune`` over the local cache.

Each prints one item per line, tab-separated, kind first (``--json`` prints one JSON document
instead); summaries go to stderr. ``verify`` exits with status 1 while a problem remains.
The work is done by :mod:`medigan_client.cache_admin`.
"""

from __future__ import annotations

import json

import click

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


@click.group(name="cache", epilog="\b\nExample:\n  medigan-client cache prune --max-size 20G")
def cache_group() -> None:
    """Inspect, verify and prune the local cache (catalogues, releases, venvs, data sets)."""


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def _cache(ctx: click.Context) -> Cache:
    client = ctx.find_object(Client)
    if client is None:  # a command invoked without the group callback
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


@cache_group.command("ls", epilog="\b\nExample:\n  medigan-client cache ls --json > cache.json")
@json_option
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List every cached item with its size and last use, and the total."""
    listing = list_cache(_cache(ctx))
    if as_json:
        click.echo(json.dumps(listing.to_json(), indent=2))
        return
    for entry in listing.entries:
        click.echo(_entry_line(entry))
    click.echo(f"total\t{len(listing.entries)} items\t{format_size(listing.total_bytes)}")


@cache_group.command("verify", epilog="\b\nExample:\n  medigan-client cache verify --fix")
@click.option("--fix", is_flag=True, help="Remove damaged items so that the next use fetches them.")
@json_option
@click.pass_context
def verify_command(ctx: click.Context, fix: bool, as_json: bool) -> None:
    """Re-hash cached artifacts and check extracted packages; exit 1 if a problem remains."""
    report = verify_cache(_cache(ctx), fix=fix)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for problem in report.problems:
            state = "removed" if problem.fixed else problem.status
            click.echo(f"{state}\t{problem.kind}\t{problem.name}\t{problem.reason}")
        for busy in report.busy:
            click.echo(f"busy\t{busy}")
        remaining = sum(1 for problem in report.problems if not problem.fixed)
        click.echo(
            f"checked {report.checked} items: {len(report.problems)} problem(s), "
            f"{remaining} left" + (f", {len(report.busy)} busy" if report.busy else ""),
            err=True,
        )
    if not report.ok:
        raise click.exceptions.Exit(1)


@cache_group.command(
    "prune", epilog="\b\nExample:\n  medigan-client cache prune --older-than 30 --dry-run"
)
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Remove items not used for DAYS days.",
)
@click.option(
    "--max-size",
    metavar="SIZE",
    help="Remove least recently used items until the cache fits, e.g. 20G or 500M.",
)
@click.option(
    "--model", metavar="ns/name[@version]", help="Remove the cached releases of this model."
)
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@json_option
@click.pass_context
def prune_command(
    ctx: click.Context,
    older_than: float | None,
    max_size: str | None,
    model: str | None,
    dry_run: bool,
    as_json: bool,
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
        click.echo(json.dumps(report.to_json(), indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    for decision in report.removed:
        entry = decision.entry
        click.echo(
            f"{verb}\t{entry.kind}\t{entry.name}\t{format_size(entry.size_bytes)}\t"
            f"{decision.reason}"
        )
    for decision in report.skipped:
        click.echo(f"skipped\t{decision.entry.kind}\t{decision.entry.name}\t{decision.reason}")
    click.echo(
        f"{verb} {len(report.removed)} item(s), {format_size(report.freed_bytes)}; "
        f"skipped {len(report.skipped)}",
        err=True,
    )
