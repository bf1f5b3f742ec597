"""The ``medigan-client`` command line: sync, search, rank, show, download, generate, push, status.

``medigan-client [--hub URL] [--token T] [--cache-dir D] [--offline] COMMAND ...``. Every error
the client raises on purpose is printed as one line ``error: <message>`` on stderr with exit
status 1 (2 for usage errors), never as a traceback; warnings go to stderr as ``warning: ...``;
results go to stdout, one item per line, the model id first so that scripts can ``cut`` it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from typer.exceptions import TyperException

from medigan_catalog.errors import CatalogError
from medigan_catalog.schema import Card
from medigan_client.api import OPERATORS, Client
from medigan_client.cache_cli import cache_app
from medigan_client.errors import BadRequestError, ClientError
from medigan_client.evaluations import describe as describe_evaluation

app = typer.Typer(
    name="medigan-client",
    help="Find, download and run generative models for medical image synthesis from a medigan hub.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(cache_app, name="cache")


def _client(ctx: typer.Context) -> Client:
    client = ctx.obj
    if not isinstance(client, Client):  # a command invoked without the group callback
        raise BadRequestError("internal: the client was not configured")
    return client


def _warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


@app.callback()
def configure(
    ctx: typer.Context,
    hub: Annotated[
        str | None, typer.Option("--hub", help="Hub URL (env MEDIGAN_HUB_URL).", show_default=False)
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", help="API token (env MEDIGAN_TOKEN).", show_default=False),
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir", help="Cache directory (env MEDIGAN_CACHE_DIR).", show_default=False
        ),
    ] = None,
    offline: Annotated[
        bool | None,
        typer.Option(
            "--offline/--online",
            help="Never use the network (env MEDIGAN_OFFLINE).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Global options; settings not given here come from the environment or the config file."""
    client = Client(hub_url=hub, token=token, cache_dir=cache_dir, offline=offline)
    ctx.obj = client
    ctx.call_on_close(client.close)


@app.command()
def sync(ctx: typer.Context) -> None:
    """Fetch the hub's catalogue into the local cache."""
    client = _client(ctx)
    result = client.sync()
    if result.warning:
        _warn(result.warning)
    state = "from cache" if result.from_cache else ("updated" if result.changed else "unchanged")
    typer.echo(
        f"catalogue of {client.settings.hub_url}: serial {result.serial}, "
        f"{result.release_count} releases ({state})"
    )
    for problem in client.snapshot().skipped:
        _warn(f"skipped a release this client cannot read: {problem}")


@app.command("search")
def search_command(
    ctx: typer.Context,
    terms: Annotated[
        list[str] | None,
        typer.Argument(
            help="Search terms; key=value terms filter a field (modality=mri).", show_default=False
        ),
    ] = None,
    operator: Annotated[
        str, typer.Option("--operator", help="How terms combine: AND, OR or XOR.")
    ] = "AND",
    medigan_semantics: Annotated[
        bool,
        typer.Option(
            "--medigan-semantics", help="Match like medigan's find_matching_models_by_values."
        ),
    ] = False,
) -> None:
    """Search the cached catalogue; prints one model id and its title per line."""
    if operator.upper() not in OPERATORS:
        raise typer.BadParameter(f"use one of {', '.join(OPERATORS)}", param_hint="--operator")
    hits = _client(ctx).search(
        list(terms or []), operator=operator.upper(), medigan_semantics=medigan_semantics
    )
    if not hits:
        typer.echo("no model matches", err=True)
    for hit in hits:
        typer.echo(f"{hit.card.model_id}\t{hit.card.title}")


@app.command("rank")
def rank_command(
    ctx: typer.Context,
    metric: Annotated[
        str,
        typer.Option(
            "--metric",
            help="With --reference a hub metric (fid, fid_rr, r_fid, kid, precision, recall); "
            "else a path in selection.performance, e.g. FID.",
        ),
    ],
    reference: Annotated[
        str | None,
        typer.Option("--reference", help="Rank by the hub's numbers against this reference set."),
    ] = None,
    extractor: Annotated[
        str | None, typer.Option("--extractor", help="Only numbers from this feature extractor.")
    ] = None,
    descending: Annotated[
        bool | None,
        typer.Option(
            "--descending/--ascending",
            help="Highest value first (default: the metric's natural order with --reference, "
            "else ascending).",
        ),
    ] = None,
) -> None:
    """Rank the newest releases by a metric; prints model id, value and title per line."""
    client = _client(ctx)
    if reference is None:
        for card in client.rank(metric, descending=bool(descending)):
            typer.echo(f"{card.model_id}\t{_metric_value(card, metric)}\t{card.title}")
        return
    for item in client.rank_by_hub_metric(
        metric, reference=reference, extractor=extractor, descending=descending
    ):
        value = item.value(metric)
        shown = "-" if value is None else f"{value:.4f}"
        source = "" if item.evaluation is None else f"\t[{item.evaluation.extractor}]"
        typer.echo(f"{item.card.model_id}\t{shown}\t{item.card.title}{source}")


def _metric_value(card: Card, metric: str) -> str:
    node: object = card.selection.performance or {}
    for part in metric.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return "-" if node is None else str(node)


def _card_summary(card: Card) -> list[str]:
    provenance = card.provenance
    output = card.output
    size = f"{output.height}x{output.width}" + (f"x{output.depth}" if output.depth else "")
    lines = [
        f"{card.release_id}",
        f"  title:       {card.title}",
        f"  runtime:     {card.runtime.kind.value} (entry point {card.runtime.entry_point})",
        f"  output:      {size}, {output.channels} channel(s), {output.dtype.value}, "
        f"range {list(output.value_range)}",
        f"  modality:    {', '.join(card.selection.modality or []) or '-'}",
        f"  type:        {card.selection.type or '-'}",
        f"  licence:     {provenance.licence or card.selection.license or '-'}",
        f"  authors:     {', '.join(provenance.authors) or '-'}",
        f"  DOIs:        {', '.join(provenance.dois or card.description.doi or []) or '-'}",
    ]
    for data in provenance.training_data:
        lines.append(
            f"  trained on:  {data.name} (licence {data.licence or 'unknown'}"
            + (f", {data.image_count} images" if data.image_count is not None else "")
            + ")"
        )
    if provenance.privacy_measures:
        lines.append(f"  privacy:     {provenance.privacy_measures}")
    if provenance.training is not None and provenance.training.hardware:
        lines.append(f"  training:    {provenance.training.hardware}")
    for argument in card.generation_arguments:
        lines.append(
            f"  argument:    {argument.name} ({argument.type.value}, default "
            f"{argument.default!r}) {argument.help}".rstrip()
        )
    artifact = card.package_artifact
    if artifact is not None:
        lines.append(f"  package:     {artifact.filename}, sha256 {artifact.sha256 or 'unknown'}")
        lines.extend(f"               {url}" for url in artifact.urls)
    return lines


@app.command()
def show(
    ctx: typer.Context, model: Annotated[str, typer.Argument(help="ns/name[@version]")]
) -> None:
    """Print a release's card summary, provenance and the hub's evaluations."""
    client = _client(ctx)
    for line in _card_summary(client.show(model)):
        typer.echo(line)
    for evaluation in client.evaluations(model):
        for line in describe_evaluation(evaluation):
            typer.echo(line)


@app.command()
def download(
    ctx: typer.Context, model: Annotated[str, typer.Argument(help="ns/name[@version]")]
) -> None:
    """Download a release's package into the verified cache; prints its path."""
    typer.echo(str(_client(ctx).download(model)))


def _parse_args(pairs: Sequence[str]) -> dict[str, object]:
    parsed: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--arg")
        parsed[key.strip()] = value
    return parsed


@app.command()
def generate(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="ns/name[@version]")],
    num_samples: Annotated[
        int, typer.Option("-n", "--num-samples", min=1, help="How many images.")
    ],
    output_dir: Annotated[
        Path, typer.Option("-o", "--output", help="Directory for the images + manifest.")
    ],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the whole run.")] = 0,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Samples per call.")] = 16,
    device: Annotated[
        str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")
    ] = "auto",
    arg: Annotated[
        list[str] | None,
        typer.Option(
            "--arg", help="A generation argument key=value; repeatable.", show_default=False
        ),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format", help="png, npy, nifti or dicom (the last two need medigan-client[formats])."
        ),
    ] = "png",
    start_index: Annotated[
        int,
        typer.Option(
            "--start-index", min=0, help="Index of the first sample (split a run over machines)."
        ),
    ] = 0,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Continue an interrupted run in the same output directory."),
    ] = False,
    isolation: Annotated[
        str, typer.Option("--isolation", help="auto, inprocess, process or venv.")
    ] = "auto",
    half: Annotated[
        bool, typer.Option("--half", help="Half precision (only where the card allows it).")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Threads that encode and write (default: CPUs).",
            show_default=False,
        ),
    ] = None,
    dicom_uid_root: Annotated[
        str | None,
        typer.Option(
            "--dicom-uid-root",
            help="UID root of DICOM files (default: UUID-derived 2.25. UIDs).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Generate images with a release (works offline once the release is cached)."""
    client = _client(ctx)
    result = client.generate(
        model,
        num_samples,
        output_dir,
        seed=seed,
        batch_size=batch_size,
        device=device,
        args=_parse_args(arg or []),
        format=output_format,
        start_index=start_index,
        resume=resume,
        isolation=isolation,
        half=half,
        workers=workers,
        dicom_uid_root=dicom_uid_root,
    )
    kept = result.count - result.generated
    typer.echo(
        f"wrote {result.generated} images of {result.model_id}@{result.version} to "
        f"{output_dir} (manifest {result.manifest_path.name}, device {result.device}, "
        f"format {result.format}" + (f", {kept} already there" if kept else "") + ")"
    )


@app.command()
def push(
    ctx: typer.Context,
    package_dir: Annotated[
        Path, typer.Argument(help="Package directory with card.json and __init__.py.")
    ],
) -> None:
    """Check a package locally (card, smoke generation), zip it and upload it."""
    result = _client(ctx).push(package_dir)
    typer.echo(f"pushed {package_dir}: state {result.state}, sha256 {result.sha256}")
    if result.release_url:
        typer.echo(result.release_url)


@app.command()
def status(
    ctx: typer.Context, release: Annotated[str, typer.Argument(help="ns/name@version")]
) -> None:
    """Print a release's state, validation checks and history on the hub."""
    answer = _client(ctx).release_status(release)
    typer.echo(f"{release}: {answer.get('state')}")
    for check in answer.get("checks") or []:
        if isinstance(check, dict):
            typer.echo(
                f"  check {check.get('name')}: {check.get('status')}"
                + (f" - {check.get('message')}" if check.get("message") else "")
            )
    for event in answer.get("events") or []:
        if isinstance(event, dict):
            typer.echo(
                f"  {event.get('created_at')}: {event.get('from_state')} -> "
                f"{event.get('to_state')} by {event.get('actor') or 'the hub'}"
                + (f" ({event.get('note')})" if event.get("note") else "")
            )
    if answer.get("doi"):
        typer.echo(f"  DOI: {answer['doi']}")


@app.command()
def review(
    ctx: typer.Context,
    release: Annotated[str, typer.Argument(help="ns/name@version")],
    decision: Annotated[str, typer.Option("--decision", help="approve or reject")],
    note: Annotated[str, typer.Option("--note", help="Why; stored in the audit trail.")] = "",
) -> None:
    """Approve or reject a release in review (reviewer tokens only)."""
    answer = _client(ctx).review(release, decision, note)
    typer.echo(f"{release}: {answer.get('state')}")


def _one_line(message: str) -> str:
    return " ".join(message.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 1 error, 2 usage, 130 interrupted)."""
    command = typer.main.get_command(app)
    try:
        outcome = command.main(
            args=list(argv) if argv is not None else sys.argv[1:],
            prog_name="medigan-client",
            standalone_mode=False,
        )
    except typer.Exit as exc:
        return int(exc.exit_code)
    except TyperException as exc:
        # Usage errors (status 2) show the usage line and a hint; others are one error line.
        show = getattr(exc, "show", None)
        if exc.exit_code == 2 and callable(show):
            show()
        else:
            typer.echo(f"error: {_one_line(exc.format_message())}", err=True)
        return int(exc.exit_code)
    except (ClientError, CatalogError) as exc:
        typer.echo(f"error: {_one_line(exc.message)}", err=True)
        return 1
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("error: interrupted", err=True)
        return 130
    # Without standalone mode click returns an exit status (e.g. after --help) or None.
    return outcome if isinstance(outcome, int) else 0


if __name__ == "__main__":
    sys.exit(main())
