"""The ``medigan-client`` command line: sync, search, rank, show, download, generate, push, status.

``medigan-client [--hub URL] [--token T] [--cache-dir D] [--offline] COMMAND ...``. Every error
the client raises on purpose is printed as one line ``error: <message>`` on stderr with exit
status 1 (2 for usage errors), never as a traceback; warnings go to stderr as ``warning: ...``;
results go to stdout, one item per line, the model id first so that scripts can ``cut`` it.

Built on click. Start-up time is the CLI's first impression: this module imports click, the
client's settings and errors, and the search index; each command imports what it needs (the card
schema, HTTP, torch) when it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from medigan_catalog.errors import CatalogError
from medigan_client.api import OPERATORS, Client
from medigan_client.cache_cli import cache_group
from medigan_client.errors import BadRequestError, ClientError

if TYPE_CHECKING:
    from medigan_catalog.schema import Card

MODEL_REF = "ns/name[@version]"
RELEASE_REF = "ns/name@version"


def _client(ctx: click.Context) -> Client:
    client = ctx.find_object(Client)
    if client is None:  # a command invoked without the group callback
        raise BadRequestError("internal: the client was not configured")
    return client


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


class _WorkflowOrder(click.Group):
    """A group whose help lists its commands in the order they are used, not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(
    name="medigan-client",
    cls=_WorkflowOrder,
    help="Find, download and run generative models for medical image synthesis from a medigan hub.",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--hub", metavar="URL", help="Hub URL (env MEDIGAN_HUB_URL).")
@click.option("--token", metavar="TOKEN", help="API token (env MEDIGAN_TOKEN).")
@click.option(
    "--cache-dir",
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="Cache directory (env MEDIGAN_CACHE_DIR).",
)
@click.option(
    "--offline/--online", default=None, help="Never use the network (env MEDIGAN_OFFLINE)."
)
@click.version_option(package_name="medigan-client", prog_name="medigan-client")
@click.pass_context
def app(
    ctx: click.Context,
    hub: str | None,
    token: str | None,
    cache_dir: Path | None,
    offline: bool | None,
) -> None:
    """Global options; settings not given here come from the environment or the config file."""
    client = Client(hub_url=hub, token=token, cache_dir=cache_dir, offline=offline)
    ctx.obj = client
    ctx.call_on_close(client.close)


@app.command()
@click.pass_context
def sync(ctx: click.Context) -> None:
    """Fetch the hub's catalogue into the local cache."""
    client = _client(ctx)
    result = client.sync()
    if result.warning:
        _warn(result.warning)
    state = "from cache" if result.from_cache else ("updated" if result.changed else "unchanged")
    click.echo(
        f"catalogue of {client.settings.hub_url}: serial {result.serial}, "
        f"{result.release_count} releases ({state})"
    )
    for problem in client.snapshot().skipped:
        _warn(f"skipped a release this client cannot read: {problem}")


@app.command("search")
@click.argument("terms", nargs=-1, metavar="[TERM]...")
@click.option(
    "--operator",
    type=click.Choice(OPERATORS, case_sensitive=False),
    default="AND",
    show_default=True,
    help="How terms combine.",
)
@click.option(
    "--medigan-semantics",
    is_flag=True,
    help="Match like medigan's find_matching_models_by_values.",
)
@click.pass_context
def search_command(
    ctx: click.Context, terms: tuple[str, ...], operator: str, medigan_semantics: bool
) -> None:
    """Search the cached catalogue; prints one model id and its title per line.

    A TERM written key=value filters a field (modality=mri).
    """
    # The index holds the id and title of every entry: no card is parsed to print them.
    hits = _client(ctx).search_entries(
        list(terms), operator=operator.upper(), medigan_semantics=medigan_semantics
    )
    if not hits:
        click.echo("no model matches", err=True)
    for hit in hits:
        click.echo(f"{hit.entry.model_id}\t{hit.entry.title}")


@app.command("rank")
@click.option(
    "--metric",
    required=True,
    help="With --reference a hub metric (fid, fid_rr, r_fid, kid, precision, recall); "
    "else a path in selection.performance, e.g. FID.",
)
@click.option("--reference", help="Rank by the hub's numbers against this reference set.")
@click.option("--extractor", help="Only numbers from this feature extractor.")
@click.option(
    "--descending/--ascending",
    default=None,
    help="Highest value first (default: the metric's natural order with --reference, "
    "else ascending).",
)
@click.pass_context
def rank_command(
    ctx: click.Context,
    metric: str,
    reference: str | None,
    extractor: str | None,
    descending: bool | None,
) -> None:
    """Rank the newest releases by a metric; prints model id, value and title per line."""
    client = _client(ctx)
    if reference is None:
        for card in client.rank(metric, descending=bool(descending)):
            click.echo(f"{card.model_id}\t{_metric_value(card, metric)}\t{card.title}")
        return
    for item in client.rank_by_hub_metric(
        metric, reference=reference, extractor=extractor, descending=descending
    ):
        value = item.value(metric)
        shown = "-" if value is None else f"{value:.4f}"
        source = "" if item.evaluation is None else f"\t[{item.evaluation.extractor}]"
        click.echo(f"{item.card.model_id}\t{shown}\t{item.card.title}{source}")


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
@click.argument("model", metavar=MODEL_REF)
@click.pass_context
def show(ctx: click.Context, model: str) -> None:
    """Print a release's card summary, provenance and the hub's evaluations."""
    from medigan_client.evaluations import describe as describe_evaluation

    client = _client(ctx)
    for line in _card_summary(client.show(model)):
        click.echo(line)
    for evaluation in client.evaluations(model):
        for line in describe_evaluation(evaluation):
            click.echo(line)


@app.command()
@click.argument("model", metavar=MODEL_REF)
@click.pass_context
def download(ctx: click.Context, model: str) -> None:
    """Download a release's package into the verified cache; prints its path."""
    click.echo(str(_client(ctx).download(model)))


def _parse_args(pairs: Sequence[str]) -> dict[str, object]:
    parsed: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--arg")
        parsed[key.strip()] = value
    return parsed


@app.command()
@click.argument("model", metavar=MODEL_REF)
@click.option(
    "-n", "--num-samples", required=True, type=click.IntRange(min=1), help="How many images."
)
@click.option(
    "-o",
    "--output",
    "output_dir",
    required=True,
    metavar="DIR",
    type=click.Path(path_type=Path),
    help="Directory for the images + manifest.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the whole run.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Samples per call.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option(
    "--arg",
    "arg",
    multiple=True,
    metavar="KEY=VALUE",
    help="A generation argument; repeatable.",
)
@click.option(
    "--format",
    "output_format",
    default="png",
    show_default=True,
    help="png, npy, nifti or dicom (the last two need medigan-client[formats]).",
)
@click.option(
    "--start-index",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Index of the first sample (split a run over machines).",
)
@click.option(
    "--resume", is_flag=True, help="Continue an interrupted run in the same output directory."
)
@click.option(
    "--isolation",
    default="auto",
    show_default=True,
    help="auto, inprocess, process or venv.",
)
@click.option("--half", is_flag=True, help="Half precision (only where the card allows it).")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Threads that encode and write (default: CPUs).",
)
@click.option(
    "--dicom-uid-root",
    default=None,
    help="UID root of DICOM files (default: UUID-derived 2.25. UIDs).",
)
@click.pass_context
def generate(
    ctx: click.Context,
    model: str,
    num_samples: int,
    output_dir: Path,
    seed: int,
    batch_size: int,
    device: str,
    arg: tuple[str, ...],
    output_format: str,
    start_index: int,
    resume: bool,
    isolation: str,
    half: bool,
    workers: int | None,
    dicom_uid_root: str | None,
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
        args=_parse_args(arg),
        format=output_format,
        start_index=start_index,
        resume=resume,
        isolation=isolation,
        half=half,
        workers=workers,
        dicom_uid_root=dicom_uid_root,
    )
    kept = result.count - result.generated
    click.echo(
        f"wrote {result.generated} images of {result.model_id}@{result.version} to "
        f"{output_dir} (manifest {result.manifest_path.name}, device {result.device}, "
        f"format {result.format}" + (f", {kept} already there" if kept else "") + ")"
    )


@app.command()
@click.argument(
    "package_dir",
    metavar="PACKAGE_DIR",
    type=click.Path(path_type=Path),
)
@click.pass_context
def push(ctx: click.Context, package_dir: Path) -> None:
    """Check a package locally (card, smoke generation), zip it and upload it.

    PACKAGE_DIR holds card.json and __init__.py.
    """
    result = _client(ctx).push(package_dir)
    click.echo(f"pushed {package_dir}: state {result.state}, sha256 {result.sha256}")
    if result.release_url:
        click.echo(result.release_url)


@app.command()
@click.argument("release", metavar=RELEASE_REF)
@click.pass_context
def status(ctx: click.Context, release: str) -> None:
    """Print a release's state, validation checks and history on the hub."""
    answer = _client(ctx).release_status(release)
    click.echo(f"{release}: {answer.get('state')}")
    for check in answer.get("checks") or []:
        if isinstance(check, dict):
            click.echo(
                f"  check {check.get('name')}: {check.get('status')}"
                + (f" - {check.get('message')}" if check.get("message") else "")
            )
    for event in answer.get("events") or []:
        if isinstance(event, dict):
            click.echo(
                f"  {event.get('created_at')}: {event.get('from_state')} -> "
                f"{event.get('to_state')} by {event.get('actor') or 'the hub'}"
                + (f" ({event.get('note')})" if event.get("note") else "")
            )
    if answer.get("doi"):
        click.echo(f"  DOI: {answer['doi']}")


@app.command()
@click.argument("release", metavar=RELEASE_REF)
@click.option("--decision", required=True, help="approve or reject")
@click.option("--note", default="", help="Why; stored in the audit trail.")
@click.pass_context
def review(ctx: click.Context, release: str, decision: str, note: str) -> None:
    """Approve or reject a release in review (reviewer tokens only)."""
    answer = _client(ctx).review(release, decision, note)
    click.echo(f"{release}: {answer.get('state')}")


app.add_command(cache_group)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 1 error, 2 usage, 130 interrupted)."""
    try:
        outcome = app.main(
            args=list(argv) if argv is not None else sys.argv[1:],
            prog_name="medigan-client",
            standalone_mode=False,
        )
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.UsageError as exc:
        # Usage errors (status 2) show the usage line and a hint.
        exc.show()
        return int(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {_one_line(exc.format_message())}", err=True)
        return int(exc.exit_code)
    except (ClientError, CatalogError) as exc:
        click.echo(f"error: {_one_line(exc.message)}", err=True)
        return 1
    except (KeyboardInterrupt, click.Abort):
        click.echo("error: interrupted", err=True)
        return 130
    # Without standalone mode click returns the command's value, or an exit status (--help).
    return outcome if isinstance(outcome, int) else 0


if __name__ == "__main__":
    sys.exit(main())
