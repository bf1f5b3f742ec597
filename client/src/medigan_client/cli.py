"""The ``medigan-client`` command line: sync, search, rank, versions, show, download, generate,
init-package, push, status, review, cache.

``medigan-client [--hub URL] [--token T] [--cache-dir D] [--offline] COMMAND ...``. Every error
the client raises on purpose is printed as one line ``error: <message>`` on stderr with exit
status 1 (2 for usage errors), never as a traceback; warnings go to stderr as ``warning: ...``;
results go to stdout, one item per line, the model id first so that scripts can ``cut`` it.

The hub: ``sync --hub URL`` (or ``--hub URL sync``) records the URL in the config file as the
default hub, so the commands after it need no ``--hub``. Each command that talks to a hub or
reads its cached catalogue first says on stderr which hub it uses and why, in one line such as
``hub: http://127.0.0.1:8123 (from config)``. Each command's help ends with an example
(:data:`EXAMPLES`).

Built on click. Start-up time is the CLI's first impression: this module imports click, the
client's settings and errors, and the search index; each command imports what it needs (the card
schema, HTTP, torch) when it runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from medigan_catalog.errors import CatalogError
from medigan_client.api import OPERATORS, Client
from medigan_client.cache_cli import cache_group
from medigan_client.compat.importer_cli import import_medigan_command
from medigan_client.errors import BadRequestError, ClientError
from medigan_client.settings import record_hub_url, recorded_hub_url

if TYPE_CHECKING:
    from medigan_catalog.schema import Card

MODEL_REF = "ns/name[@version]"
RELEASE_REF = "ns/name@version"
MODEL_ID = "ns/name"

# Why a command uses the hub it uses, as the hub line says it (ClientSettings.hub_url_source).
HUB_SOURCES = {
    "argument": "from --hub",
    "environment": "from MEDIGAN_HUB_URL",
    "config": "from config",
    "default": "built-in default",
}
_HUB_ANNOUNCED = "medigan_client.hub_announced"

# One example per command, shown at the end of its help. The group's order below is the order
# the commands are used in; commands registered later (by other modules) follow it.
EXAMPLES: dict[str, str] = {
    "sync": "medigan-client sync --hub http://127.0.0.1:8000",
    "search": "medigan-client search mammo dcgan modality=mammography",
    "rank": "medigan-client rank --metric fid --reference chest-xray-test",
    "versions": "medigan-client versions zoo/chestxray-dcgan-64",
    "show": "medigan-client show zoo/chestxray-dcgan-64",
    "download": "medigan-client download zoo/chestxray-dcgan-64@1.0.0",
    "generate": "medigan-client generate zoo/chestxray-dcgan-64 -n 64 -o synthetic-cxr",
    "init-package": "medigan-client init-package my_model --model-id my-lab/my-model",
    "import-medigan": "medigan-client import-medigan ./my_medigan_package",
    "push": "MEDIGAN_TOKEN=... medigan-client push ./my_model --wait",
    "status": "medigan-client status my-lab/my-model@0.1.0",
    "review": "medigan-client review my-lab/my-model@0.1.0 --decision approve --note 'checks pass'",
    "cache": "medigan-client cache ls",
}


def example_epilog(example: str) -> str:
    """An epilog that shows ``example`` as it is (``\\b``: click does not rewrap it)."""
    return f"\b\nExample:\n  {example}"


def _client(ctx: click.Context) -> Client:
    """The command's client; the first call of a command says on stderr which hub it uses."""
    client = ctx.find_object(Client)
    if client is None:  # a command invoked without the group callback
        raise BadRequestError("internal: the client was not configured")
    if not ctx.meta.get(_HUB_ANNOUNCED):
        ctx.meta[_HUB_ANNOUNCED] = True
        source = HUB_SOURCES.get(client.settings.hub_url_source, client.settings.hub_url_source)
        click.echo(f"hub: {client.settings.hub_url} ({source})", err=True)
    return client


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


class _WorkflowOrder(click.Group):
    """A group whose help lists its commands in the order they are used, not alphabetically,
    and ends each command's help with its example from :data:`EXAMPLES`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        known = [name for name in EXAMPLES if name in self.commands]
        return known + [name for name in self.commands if name not in EXAMPLES]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None and command.epilog is None and cmd_name in EXAMPLES:
            command.epilog = example_epilog(EXAMPLES[cmd_name])
        return command


@click.group(
    name="medigan-client",
    cls=_WorkflowOrder,
    help="Find, download and run generative models for medical image synthesis from a medigan hub.",
    epilog="\b\nExamples:\n  medigan-client sync --hub http://127.0.0.1:8000\n"
    "  medigan-client search chest x-ray\n"
    "  medigan-client generate zoo/chestxray-dcgan-64 -n 16 -o out",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--hub",
    metavar="URL",
    help="Hub URL (env MEDIGAN_HUB_URL; default: the hub `sync --hub` recorded in the config "
    "file). Given with sync, it is recorded as the default.",
)
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
@click.option(
    "--hub",
    "hub_url",
    metavar="URL",
    help="The hub to sync from (overrides the global --hub); recorded as the default hub.",
)
@click.pass_context
def sync(ctx: click.Context, hub_url: str | None) -> None:
    """Fetch the hub's catalogue into the local cache.

    A hub given with --hub (here or before the command) becomes the default hub: it is recorded
    in the config file, and later commands without --hub use it.
    """
    if hub_url is not None:
        given = _client_without_announcing(ctx)
        client = Client(
            settings=replace(given.settings, hub_url=hub_url, hub_url_source="argument"),
            progress=given.progress,
        )
        ctx.obj = client
        ctx.call_on_close(client.close)
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
    if client.settings.hub_url_source == "argument":
        _record_default_hub(client.settings.hub_url)


def _client_without_announcing(ctx: click.Context) -> Client:
    client = ctx.find_object(Client)
    if client is None:  # a command invoked without the group callback
        raise BadRequestError("internal: the client was not configured")
    return client


def _record_default_hub(hub_url: str) -> None:
    """Record ``hub_url`` as the default hub, saying so when it changes; a config file that
    cannot be written is a warning, not a failed sync."""
    try:
        if recorded_hub_url() == hub_url:
            return
        path = record_hub_url(hub_url)
    except ClientError as error:
        _warn(f"{hub_url} was not recorded as the default hub: {error.message}")
        return
    click.echo(f"hub: {hub_url} is now the default hub (recorded in {path})", err=True)


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
    """Rank the newest releases by a metric; prints model id, value and title per line.

    Without --reference the values are those the model cards report themselves; a warning on
    stderr says so, and names the modalities or extractors when the ranked values mix them. A
    reference set no release was evaluated against is an error naming the known sets.
    """
    ranking = _client(ctx).ranking(
        metric, reference=reference, extractor=extractor, descending=descending
    )
    for caveat in ranking.caveats:
        _warn(caveat)
    for row in ranking.rows:
        if row.value is None:
            shown = "-"
        else:
            shown = f"{row.value:g}" if ranking.self_reported else f"{row.value:.4f}"
        source = "" if row.extractor is None else f"\t[{row.extractor}]"
        click.echo(f"{row.card.model_id}\t{shown}\t{row.card.title}{source}")


@app.command()
@click.argument("model", metavar=MODEL_ID)
@click.pass_context
def versions(ctx: click.Context, model: str) -> None:
    """List a model's releases in the synced catalogue, newest version first.

    Prints per line: version, state, publication date, the package's sha256 (first 12 hex
    digits) and "newest" on the release ns/name resolves to. The catalogue lists published
    releases only; `status ns/name@version` asks the hub about any release.
    """
    for release in _client(ctx).versions(model):
        published = release.published_at.date().isoformat() if release.published_at else "-"
        digest = release.package_sha256[:12] if release.package_sha256 else "-"
        fields = [release.version, release.state, published, digest]
        click.echo("\t".join([*fields, "newest"] if release.newest else fields))


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
    default=None,
    help="Samples per call; picks the sample sequence of a seed. Default: 16, 32 for "
    "medigan-legacy packages.",
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
    "--overwrite",
    is_flag=True,
    help="Replace the previous run in the output directory: remove the files its manifest "
    "lists (never other files), then generate.",
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
    batch_size: int | None,
    device: str,
    arg: tuple[str, ...],
    output_format: str,
    start_index: int,
    resume: bool,
    overwrite: bool,
    isolation: str,
    half: bool,
    workers: int | None,
    dicom_uid_root: str | None,
) -> None:
    """Generate images with a release (works offline once the release is cached).

    The output directory must be empty or missing, unless --resume continues the run recorded
    in its manifest.jsonl or --overwrite replaces it.
    """
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
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
        overwrite=overwrite,
        isolation=isolation,
        half=half,
        workers=workers,
        dicom_uid_root=dicom_uid_root,
    )
    kept = result.count - result.generated
    click.echo(
        f"wrote {result.generated} images of {result.model_id}@{result.version} to "
        f"{output_dir} (manifest {result.manifest_path.name}, device {result.device}, "
        f"format {result.format}"
        + (f", {kept} already there" if kept else "")
        + (f", {result.removed} files of the previous run removed" if result.removed else "")
        + ")"
    )


@app.command()
@click.argument(
    "package_dir",
    metavar="PACKAGE_DIR",
    type=click.Path(path_type=Path),
)
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="When the dry run fails, also print the full traceback.",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Wait for the hub's checks and print the release's state (in_review when they pass).",
)
@click.option(
    "--wait-timeout",
    type=click.FloatRange(min=1),
    default=600.0,
    show_default=True,
    help="Seconds --wait waits for the checks.",
)
@click.pass_context
def push(
    ctx: click.Context, package_dir: Path, verbose: bool, wait: bool, wait_timeout: float
) -> None:
    """Check a package locally (card, smoke generation), zip it and upload it.

    PACKAGE_DIR holds card.json and __init__.py. A failed dry run is shown in the package's
    terms: the exception and the package's own frames (--verbose adds the full traceback).
    """
    try:
        result = _client(ctx).push(package_dir)
    except ClientError as exc:
        if exc.traceback is None:
            raise
        # A failure of the package: its short form keeps its frame lines, one per line.
        click.echo(f"error: {exc.message}", err=True)
        if verbose:
            click.echo("full traceback:", err=True)
            click.echo(exc.traceback.rstrip("\n"), err=True)
        ctx.exit(1)
    click.echo(f"pushed {package_dir}: state {result.state}, sha256 {result.sha256}")
    if result.release_url:
        click.echo(result.release_url)
    if wait:
        release = result.release_id
        click.echo(f"waiting for the hub's checks of {release} ...", err=True)
        status = _client(ctx).wait_for_checks(release, timeout=wait_timeout)
        click.echo(f"{release}: {status.get('state')}")


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


@app.command("init-package")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--model-id", metavar=MODEL_ID, help="The model's id (default: my-lab/<DIR's name>).")
@click.option("--modality", default="x-ray", show_default=True, help="The images' modality.")
@click.option(
    "--image-size",
    type=click.IntRange(min=4, max=1024),
    default=64,
    show_default=True,
    help="Height and width of the images.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write into a directory that is not empty, replacing only the skeleton's files.",
)
def init_package_command(
    directory: Path, model_id: str | None, modality: str, image_size: int, force: bool
) -> None:
    """Write a working v2 model package skeleton into DIR; prints the files it wrote.

    The skeleton (a tiny torch generator, its random weights, a card that validates, a README)
    generates and passes the checks of push; train it and edit card.json before sharing it.
    """
    from medigan_client.scaffold import init_package

    skeleton = init_package(
        directory, model_id=model_id, modality=modality, image_size=image_size, force=force
    )
    for path in skeleton.files:
        click.echo(str(path))
    click.echo(
        f"wrote the package skeleton of {skeleton.model_id} to {directory}; next: read its "
        "README.md",
        err=True,
    )


app.add_command(cache_group)
app.add_command(import_medigan_command)


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
