"""The ``medigan-client`` command line: sync, search, rank, versions, show, download, generate,
init-package, push, status, review, login, whoami, token, org, namespace, visibility, logout,
keys, cache, github.

``medigan-client [--hub URL] [--token T] [--cache-dir D] [--offline] COMMAND ...``. Every error
the client raises on purpose is printed as one line ``error: <message>`` on stderr with exit
status 1 (2 for usage errors), never as a traceback (a refusal of access also names its code
and what to do: ``error: ... (scope_missing); create a token that has the scope: ...``);
warnings go to stderr as ``warning: ...``; results go to stdout, one item per line, the model
id first so that scripts can ``cut`` it.

The hub: ``sync --hub URL`` (or ``--hub URL sync``) records the URL in the config file as the
default hub, so the commands after it need no ``--hub``. Each command that talks to a hub or
reads its cached catalogue first says on stderr which hub it uses and why, in one line such as
``hub: http://127.0.0.1:8123 (from config)``. Each command's help ends with an example
(:data:`EXAMPLES`).

Several hubs (``[[hubs]]`` in the config file, docs/client-federation.md): ``sync`` syncs each
and reports per hub (exit status 1 only when every hub failed); ``search``, ``rank`` and
``versions`` add a last column naming each line's hub and ``show`` a ``hub:`` line; every
command that takes a model accepts ``hub-name:ns/name[@version]``. ``keys show|forget`` lists
or drops the signing keys pinned for a hub.

Built on click. Start-up time is the CLI's first impression: this module imports click, the
client's settings and errors, and the search index; each command imports what it needs (the card
schema, HTTP, torch) when it runs.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from medigan_catalog.errors import CatalogError
from medigan_client.api import OPERATORS, Client, HubRelease
from medigan_client.cache_cli import cache_group
from medigan_client.compat.importer_cli import import_medigan_command
from medigan_client.errors import BadRequestError, ClientError
from medigan_client.github_cli import github_group
from medigan_client.settings import (
    default_config_path,
    record_hub_url,
    record_token,
    recorded_hub_url,
    recorded_token,
)

if TYPE_CHECKING:
    from datetime import datetime

    from medigan_catalog.access import AccountInfo, Organisation, TokenInfo, VisibilityState
    from medigan_catalog.schema import Card
    from medigan_client.sync import SyncResult

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
    "deprecate": "medigan-client deprecate my-lab/my-model@0.1.0 --reason 'mode collapse' "
    "--replacement my-lab/my-model-v2",
    "yank": "medigan-client yank my-lab/my-model@0.1.1 --reason 'wrong output range'",
    "withdraw": "medigan-client withdraw my-lab/my-model@0.2.0 --reason 'pushed by mistake'",
    "login": "medigan-client login --username alice",
    "whoami": "medigan-client whoami",
    "token": "medigan-client token create ci --scope read --days 30",
    "org": "medigan-client org member add my-lab bob --role maintainer",
    "namespace": "medigan-client namespace list",
    "visibility": "medigan-client visibility my-lab/my-model internal",
    "logout": "medigan-client logout --revoke",
    "keys": "medigan-client keys forget institution",
    "cache": "medigan-client cache ls",
    "github": "medigan-client github link my-lab/my-model my-lab/my-model-repo",
}

# The values of medigan_catalog.access's TokenScope, OrgRole and Visibility, written out so that
# the options' choices need no pydantic at start-up (a test keeps them equal).
SCOPE_NAMES = ("read", "push", "review", "admin")
ROLE_NAMES = ("owner", "maintainer", "reviewer", "reader")
VISIBILITY_NAMES = ("public", "internal", "private")

# Error codes whose line also names the code, and what to do about it.
ACCESS_HINTS: dict[str, str | None] = {
    "authentication_required": "sign in with `medigan-client login`",
    "token_expired": "sign in again with `medigan-client login`",
    "scope_missing": "create a token that has the scope: "
    "`medigan-client token create NAME --scope SCOPE`",
    "permission_denied": None,
    "throttled": None,
    "namespace_not_found": "see `medigan-client namespace list`",
    "namespace_taken": None,
    "signature_invalid": "the document was altered on the way; nothing of it was used",
    "signature_missing": "a hub that signs nothing can be trusted with verify = false in its "
    "config entry (docs/client-federation.md)",
    "key_changed": "if the hub's operator confirms the new key out of band, "
    "`medigan-client keys forget HUB` and sync again",
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
        if client.multi_hub:
            listed = ", ".join(f"{entry.name} ({entry.url})" for entry in client.hubs)
            click.echo(f"hubs: {listed} ({source})", err=True)
        else:
            click.echo(f"hub: {client.settings.hub_url} ({source})", err=True)
    return client


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


@contextlib.contextmanager
def _lifecycle_warnings_shown() -> Iterator[None]:
    """Print each warning about a deprecated or yanked release as the CLI's ``warning:`` line,
    even when the command then fails."""
    from medigan_client.errors import ReleaseLifecycleWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ReleaseLifecycleWarning)
        try:
            yield
        finally:
            for warning in caught:
                if issubclass(warning.category, ReleaseLifecycleWarning):
                    _warn(str(warning.message))
                else:
                    warnings.showwarning(
                        warning.message, warning.category, warning.filename, warning.lineno
                    )


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
    several_configured = False
    if hub_url is not None:
        given = _client_without_announcing(ctx)
        several_configured = bool(given.settings.hubs)
        client = Client(settings=given.settings.with_hub(hub_url), progress=given.progress)
        ctx.obj = client
        ctx.call_on_close(client.close)
    client = _client(ctx)
    if client.multi_hub:
        _sync_hubs(client)
        return
    result = client.sync()
    if result.warning:
        _warn(result.warning)
    click.echo(f"catalogue of {client.settings.hub_url}: {_sync_state(result)}")
    for notice in result.notices:
        _warn(notice)
    for problem in client.snapshot().skipped:
        _warn(f"skipped a release this client cannot read: {problem}")
    if client.settings.hub_url_source == "argument" and not several_configured:
        _record_default_hub(client.settings.hub_url)


def _sync_state(result: SyncResult) -> str:
    state = "from cache" if result.from_cache else ("updated" if result.changed else "unchanged")
    return f"serial {result.serial}, {result.release_count} releases ({state})"


def _sync_hubs(client: Client) -> None:
    """Sync every hub, one line each; fails (status 1) only when every hub failed."""
    reports = client.sync_hubs()
    for report in reports:
        if report.error is not None:
            click.echo(f"hub {report.hub} ({report.hub_url}): failed", err=False)
            click.echo(f"error: {report.hub}: {_error_line(report.error)}", err=True)
            continue
        assert report.result is not None
        if report.result.warning:
            _warn(f"{report.hub}: {report.result.warning}")
        click.echo(f"hub {report.hub} ({report.hub_url}): {_sync_state(report.result)}")
        for notice in report.result.notices:
            _warn(f"{report.hub}: {notice}")
        for problem in client.snapshot(report.hub).skipped:
            _warn(f"{report.hub}: skipped a release this client cannot read: {problem}")
    failed = [report for report in reports if report.error is not None]
    if len(failed) == len(reports):
        raise click.exceptions.Exit(1)
    if failed:
        _warn(
            f"{len(failed)} of {len(reports)} hubs failed to sync ("
            + ", ".join(report.hub for report in failed)
            + "); the others were synced"
        )


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
    client = _client(ctx)
    hits = client.search_hubs(
        list(terms), operator=operator.upper(), medigan_semantics=medigan_semantics
    )
    if not hits:
        click.echo("no model matches", err=True)
    for hub, hit in hits:
        line = f"{hit.entry.model_id}\t{hit.entry.title}"
        click.echo(f"{line}\t{hub}" if client.multi_hub else line)


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
    client = _client(ctx)
    ranking = client.ranking(
        metric, reference=reference, extractor=extractor, descending=descending
    )
    hubs = (
        {found.card.release_id: found.hub for found in client.newest_releases()}
        if client.multi_hub
        else {}
    )
    for caveat in ranking.caveats:
        _warn(caveat)
    for row in ranking.rows:
        if row.value is None:
            shown = "-"
        else:
            shown = f"{row.value:g}" if ranking.self_reported else f"{row.value:.4f}"
        source = "" if row.extractor is None else f"\t[{row.extractor}]"
        hub = f"\t{hubs.get(row.card.release_id, '-')}" if client.multi_hub else ""
        click.echo(f"{row.card.model_id}\t{shown}\t{row.card.title}{source}{hub}")


@app.command()
@click.argument("model", metavar=MODEL_ID)
@click.pass_context
def versions(ctx: click.Context, model: str) -> None:
    """List a model's releases in the synced catalogue, newest version first.

    Prints per line: version, state, publication date, the package's sha256 (first 12 hex
    digits) and "newest" on the release ns/name resolves to. The catalogue lists published,
    deprecated and yanked releases (a line after each of the last two says why); `status
    ns/name@version` asks the hub about any release.
    """
    client = _client(ctx)
    for release in client.versions(model):
        published = release.published_at.date().isoformat() if release.published_at else "-"
        digest = release.package_sha256[:12] if release.package_sha256 else "-"
        fields = [release.version, release.state, published, digest]
        if release.newest:
            fields.append("newest")
        if client.multi_hub:
            # Always the last column, after "newest" or an empty field where it is not.
            fields = [*fields, release.hub] if release.newest else [*fields, "", release.hub]
        click.echo("\t".join(fields))
        if release.notice:
            click.echo(f"  {release.notice}")


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
    if card.release_notes:
        notes = card.release_notes.strip().splitlines()
        lines.append(f"  notes:       {notes[0]}")
        lines.extend(f"               {line}" for line in notes[1:])
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
    found = client.locate(model)
    lines = _card_summary(found.card)
    lines[1:1] = [*_state_lines(found), *_hub_lines(found)]
    for line in lines:
        click.echo(line)
    for evaluation in client.evaluations(model):
        for line in describe_evaluation(evaluation):
            click.echo(line)


def _state_lines(found: HubRelease) -> list[str]:
    """The release's state, and for a deprecated or yanked one why and what replaces it."""
    release = found.release
    lines = [f"  state:       {release.state.value}"]
    if release.notice is not None:
        lines.append(f"  reason:      {release.notice.reason}")
        if release.notice.replacement:
            lines.append(f"  replacement: {release.notice.replacement}")
    return lines


def _hub_lines(found: HubRelease) -> list[str]:
    """Where a release was found, where it came from, whether a pinned key attested it, and
    the DOI its hub pinned (and whether the pin broke)."""
    lines = [f"  hub:         {found.hub} ({found.hub_url})"]
    origin = found.release.origin
    attestation = found.release.attestation
    if attestation is None:
        attested = "none"
    elif found.attestation_verified:
        attested = f"verified, by {attestation.key_id} of hub {found.attested_by}"
    else:
        attested = f"not verified (key {attestation.key_id} is pinned for no configured hub)"
    if origin is not None:
        lines.append(
            f"  origin:      {origin.hub} ({origin.url}), mirrored at serial {origin.serial}"
        )
    elif attestation is not None:
        lines.append(f"  origin:      {attestation.hub}")
    lines.append(f"  attestation: {attested}")
    pin = found.release.pin
    if pin is not None:
        checked = f", checked {pin.checked_at:%Y-%m-%d %H:%M}" if pin.checked_at else ""
        concept = f", all versions {pin.concept_doi}" if pin.concept_doi else ""
        if pin.broken:
            lines.append(f"  pinned DOI:  {pin.doi} (PIN BROKEN{checked})")
            lines.append(f"  pin broken:  {pin.note or 'its Zenodo record changed'}")
        else:
            lines.append(
                f"  pinned DOI:  {pin.doi} (its record holds this release{concept}{checked})"
            )
    return lines


@app.command()
@click.argument("model", metavar=MODEL_REF)
@click.pass_context
def download(ctx: click.Context, model: str) -> None:
    """Download a release's package into the verified cache; prints its path."""
    with _lifecycle_warnings_shown():
        path = _client(ctx).download(model)
    click.echo(str(path))


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
    with _lifecycle_warnings_shown():
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
    metavar="[PACKAGE_DIR]",
    type=click.Path(path_type=Path),
    required=False,
)
@click.option(
    "--from-github",
    "from_github",
    metavar="OWNER/REPO@TAG",
    default=None,
    help="Instead of PACKAGE_DIR: have the hub fetch this GitHub release's package asset and "
    "submit it as version = tag (the repository must be linked: `github link`).",
)
@click.option(
    "--model",
    "github_model",
    metavar=MODEL_ID,
    default=None,
    help="With --from-github: the model, when several are linked to the repository.",
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
@click.option(
    "--visibility",
    type=click.Choice(VISIBILITY_NAMES),
    default=None,
    help="Who may see the model when this push creates it (default: the hub's); an existing "
    "model keeps its own (see `visibility`).",
)
@click.option(
    "--mint-doi",
    is_flag=True,
    help="Ask the hub to deposit the package on Zenodo once it is approved and pin the DOI it "
    "gets (a new version of the model's previous deposit); the release is published then.",
)
@click.option(
    "--doi",
    default=None,
    metavar="DOI",
    help="The Zenodo DOI (10.5281/zenodo.N) of a record that already holds this package: the "
    "hub checks its files against the package on approval and pins it.",
)
@click.pass_context
def push(
    ctx: click.Context,
    package_dir: Path | None,
    from_github: str | None,
    github_model: str | None,
    verbose: bool,
    wait: bool,
    wait_timeout: float,
    visibility: str | None,
    mint_doi: bool,
    doi: str | None,
) -> None:
    """Check a package locally (card, smoke generation), zip it and upload it.

    PACKAGE_DIR holds card.json and __init__.py. A failed dry run is shown in the package's
    terms: the exception and the package's own frames (--verbose adds the full traceback).
    With --from-github OWNER/REPO@TAG the hub fetches the release's package asset itself, with
    its own GitHub token, and submits it (docs/github.md).
    """
    if (package_dir is None) == (from_github is None):
        raise click.UsageError("give either PACKAGE_DIR or --from-github OWNER/REPO@TAG")
    if from_github is not None:
        from medigan_client.github_cli import push_from_github

        if visibility is not None:
            raise click.UsageError("--visibility applies to a PACKAGE_DIR push only")
        if mint_doi or doi:
            raise click.UsageError("--mint-doi and --doi apply to a PACKAGE_DIR push only")

        push_from_github(_client(ctx), from_github, github_model, wait, wait_timeout)
        return
    assert package_dir is not None  # checked above; for the type checker
    try:
        result = _client(ctx).push(package_dir, visibility=visibility, mint_doi=mint_doi, doi=doi)
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
        pinned = (
            "pin broken"
            if answer.get("pin_broken")
            else ("pinned" if answer.get("pinned") else "not pinned")
        )
        click.echo(f"  DOI: {answer['doi']} ({pinned})")
        if answer.get("pin_broken") and answer.get("pin_note"):
            click.echo(f"  pin broken: {answer['pin_note']}")


@app.command()
@click.argument("release", metavar=RELEASE_REF)
@click.option("--decision", required=True, help="approve or reject")
@click.option("--note", default="", help="Why; stored in the audit trail.")
@click.pass_context
def review(ctx: click.Context, release: str, decision: str, note: str) -> None:
    """Approve or reject a release in review (reviewer tokens only)."""
    answer = _client(ctx).review(release, decision, note)
    click.echo(f"{release}: {answer.get('state')}")
    if decision == "approve" and answer.get("state") == "approved":
        click.echo(
            "  the hub pins its DOI on Zenodo, then publishes it "
            f"(`medigan-client status {release}` shows when)"
        )


@app.command()
@click.argument("release", metavar=RELEASE_REF)
@click.option("--reason", required=True, help="Why; shown to every user of the release.")
@click.option(
    "--replacement",
    metavar=MODEL_ID,
    default=None,
    help="The model users should take instead (namespace/name).",
)
@click.pass_context
def deprecate(ctx: click.Context, release: str, reason: str, replacement: str | None) -> None:
    """Deprecate a published release (the model's maintainers).

    It stays in the catalogue and downloadable; clients warn whoever uses it and name the
    replacement, and ns/name resolves to it only when no published release is left.
    """
    answer = _client(ctx).deprecate(release, reason, replacement)
    click.echo(f"{release}: {answer.get('state')}")


@app.command()
@click.argument("release", metavar=RELEASE_REF)
@click.option("--reason", required=True, help="Why; shown to every user of the release.")
@click.pass_context
def yank(ctx: click.Context, release: str, reason: str) -> None:
    """Yank a release (PEP 592; the model's maintainers).

    It stays downloadable by its exact version, for whoever pinned it, and is never chosen for
    ns/name nor ranked on leaderboards.
    """
    answer = _client(ctx).yank(release, reason)
    click.echo(f"{release}: {answer.get('state')}")


@app.command()
@click.argument("release", metavar=RELEASE_REF)
@click.option("--reason", required=True, help="Why; kept in the release's audit trail.")
@click.pass_context
def withdraw(ctx: click.Context, release: str, reason: str) -> None:
    """Withdraw a release: your own before publication; after it, the hub's administrators
    (with an admin-scope token). A withdrawn release leaves the catalogue and clients refuse it.
    """
    answer = _client(ctx).withdraw(release, reason)
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


# -- identity and access ---------------------------------------------------------------------
# Each command imports the wire documents (pydantic) and HTTP when it runs, as the others do.


def _when(moment: datetime | None, never: str = "never") -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else never


def _default_token_name() -> str:
    import socket

    return f"medigan-client on {socket.gethostname()}"[:100]


def _warn_if_token_overridden() -> None:
    """Say when the environment's token, not the config file's, is the one commands send."""
    import os

    if os.environ.get("MEDIGAN_TOKEN"):
        _warn("MEDIGAN_TOKEN is set: commands send it, not the token in the config file")


def _warn_if_password_travels_in_clear(hub_url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(hub_url)
    if parts.scheme != "https" and (parts.hostname or "") not in {"127.0.0.1", "localhost", "::1"}:
        _warn(f"{hub_url} is not https: the password travels unencrypted")


def _store_token(key: str, hub_url: str) -> None:
    """Store ``key`` and its hub in the config file, saying so on stderr."""
    previous_hub = recorded_hub_url()
    path = record_token(key, hub_url=hub_url)
    click.echo(f"token stored in {path} (readable by you only)", err=True)
    if previous_hub != hub_url:
        click.echo(f"hub: {hub_url} is now the default hub (recorded in {path})", err=True)
    _warn_if_token_overridden()


def _describe_token(
    scopes: Sequence[str], namespace: str | None, expires_at: datetime | None
) -> str:
    return (
        f"scopes {', '.join(scopes) or '-'}; namespace {namespace or 'any'}; "
        f"expires {_when(expires_at)}"
    )


def _describe_account_token(account: AccountInfo) -> str:
    token = account.token
    if token is None:
        return "no token (a session)"
    return _describe_token(token.scopes, token.namespace, token.expires_at)


@app.command()
@click.option("--username", metavar="USER", help="Your username on the hub (asked if not given).")
@click.option(
    "--token-name",
    metavar="NAME",
    help="A name for the new token, to tell it apart in `token list` (default: this machine's).",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(SCOPE_NAMES),
    help="What the token may do; repeatable (default: read and push).",
)
@click.option(
    "--days",
    type=click.IntRange(min=1, max=366),
    default=None,
    help="How long the token lives (default: 90).",
)
@click.option(
    "--with-token",
    is_flag=True,
    help="Read a token you already have from stdin, check it and store it (no password).",
)
@click.pass_context
def login(
    ctx: click.Context,
    username: str | None,
    token_name: str | None,
    scopes: tuple[str, ...],
    days: int | None,
    with_token: bool,
) -> None:
    """Sign in: create a token with your password and store it in the config file.

    The password (asked, hidden) is sent once, to create the token. The token is stored in the
    config file, readable by you only, together with the hub it belongs to, so later commands
    use both. --with-token stores a token you already have instead (from `token create`).
    """
    from medigan_client.access import create_token_with_password, token_request

    settings = _client(ctx).settings
    if with_token:
        if username or token_name or scopes or days is not None:
            raise click.UsageError(
                "--with-token takes no --username, --token-name, --scope or --days"
            )
        key = sys.stdin.readline().strip()
        if not key:
            raise BadRequestError("--with-token read no token from stdin")
        with Client(settings=replace(settings, token=key), progress=False) as checking:
            account = checking.whoami()
        _store_token(key, settings.hub_url)
        click.echo(
            f"signed in to {settings.hub_url} as {account.username} "
            f"({_describe_account_token(account)})"
        )
        return
    if username is None:
        username = str(click.prompt("Username", err=True)).strip()
    _warn_if_password_travels_in_clear(settings.hub_url)
    password = str(click.prompt("Password", hide_input=True, err=True))
    request = token_request(token_name or _default_token_name(), scopes=scopes or None, days=days)
    created = create_token_with_password(settings, username, password, request)
    _store_token(created.key, settings.hub_url)
    click.echo(
        f"signed in to {settings.hub_url} as {username} (token {created.name!r}: "
        f"{_describe_token(created.scopes, created.namespace, created.expires_at)})"
    )


@app.command()
@click.option("--revoke", is_flag=True, help="Revoke the stored token on the hub first.")
@click.pass_context
def logout(ctx: click.Context, revoke: bool) -> None:
    """Remove the stored token from the config file (--revoke: revoke it on the hub first)."""
    from medigan_client.errors import AuthenticationRequiredError

    path = default_config_path()
    stored = recorded_token(config_path=path)
    if stored is None:
        click.echo(f"no token is stored in {path}", err=True)
        _warn_if_token_overridden()
        return
    if revoke:
        settings = _client(ctx).settings
        try:
            with Client(settings=replace(settings, token=stored), progress=False) as holder:
                account = holder.whoami()
                token_id = account.token.id if account.token is not None else None
                if token_id is None:
                    raise BadRequestError(
                        f"{settings.hub_url} did not say which token this is, so it was not "
                        "revoked; it is still stored"
                    )
                holder.revoke_token(token_id)
            click.echo(f"revoked token {token_id} on {settings.hub_url}", err=True)
        except AuthenticationRequiredError as error:
            # An expired or unknown token cannot be used any more: nothing left to revoke.
            _warn(f"the hub no longer accepts the stored token ({error.message})")
    record_token(None, config_path=path)
    click.echo(f"signed out: the token was removed from {path}")
    _warn_if_token_overridden()


@app.command()
@click.pass_context
def whoami(ctx: click.Context) -> None:
    """Who the token belongs to: user, namespaces, organisations and roles, the token's limits."""
    client = _client(ctx)
    account = client.whoami()
    organisations = ", ".join(
        f"{organisation.name} ({organisation.role or 'member'})"
        for organisation in account.organisations
    )
    lines = [
        f"user:          {account.username}",
        f"hub:           {client.settings.hub_url}",
        f"namespace:     {account.namespace or '-'} (where pushes go by default)",
        f"namespaces:    {', '.join(account.namespaces) or '-'} (where you may push)",
        f"organisations: {organisations or '-'}",
        f"token:         {_describe_account_token(account)}",
    ]
    if account.hub_reviewer:
        lines.append("hub reviewer:  yes")
    for line in lines:
        click.echo(line)


@app.group("token")
def token_group() -> None:
    """Create, list and revoke your API tokens."""


def _token_state(token: TokenInfo) -> str:
    from datetime import UTC
    from datetime import datetime as clock

    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= clock.now(UTC):
        return "expired"
    return "active"


@token_group.command(
    "create", epilog=example_epilog("export MEDIGAN_TOKEN=$(medigan-client token create ci)")
)
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice(SCOPE_NAMES),
    help="What the token may do; repeatable (default: read and push).",
)
@click.option("--namespace", metavar="NS", help="Restrict the token to this namespace.")
@click.option(
    "--days",
    type=click.IntRange(min=1, max=366),
    default=None,
    help="How long the token lives (default: 90).",
)
@click.pass_context
def token_create(
    ctx: click.Context,
    name: str,
    scopes: tuple[str, ...],
    namespace: str | None,
    days: int | None,
) -> None:
    """Create a token; prints its key alone on stdout, this once (details on stderr).

    The new token can be no wider than the one that creates it: its scopes a subset, its
    namespace no wider, its expiry no later.
    """
    created = _client(ctx).create_token(name, scopes=scopes or None, namespace=namespace, days=days)
    click.echo(
        f"created token {created.name!r} (id {created.id}; "
        f"{_describe_token(created.scopes, created.namespace, created.expires_at)}); "
        "its key is shown this once",
        err=True,
    )
    click.echo(created.key)


@token_group.command("list", epilog=example_epilog("medigan-client token list"))
@click.pass_context
def token_list(ctx: click.Context) -> None:
    """List your tokens: id, name, key prefix, scopes, namespace, expiry, last use, state."""
    tokens = _client(ctx).tokens()
    if not tokens:
        click.echo("no tokens", err=True)
    for token in tokens:
        fields = [
            str(token.id),
            token.name,
            f"{token.key_prefix}...",
            ",".join(token.scopes) or "-",
            token.namespace or "-",
            _when(token.expires_at),
            _when(token.last_used_at),
            _token_state(token),
        ]
        click.echo("\t".join(fields))


@token_group.command("revoke", epilog=example_epilog("medigan-client token revoke 12"))
@click.argument("token_id", metavar="ID", type=int)
@click.pass_context
def token_revoke(ctx: click.Context, token_id: int) -> None:
    """Revoke one of your tokens by its id (see `token list`)."""
    client = _client(ctx)
    client.revoke_token(token_id)
    click.echo(f"revoked token {token_id} on {client.settings.hub_url}")


@app.group("org")
def org_group() -> None:
    """Organisations: create them, list yours, manage their members."""


def _echo_organisation(organisation: Organisation) -> None:
    title = f" - {organisation.title}" if organisation.title else ""
    click.echo(f"{organisation.name}{title}")
    click.echo(f"  your role: {organisation.role or '-'}")
    for member in organisation.members:
        click.echo(f"  member:    {member.username}\t{member.role}")


@org_group.command(
    "create", epilog=example_epilog("medigan-client org create my-lab --title 'My lab'")
)
@click.argument("name")
@click.option("--title", default="", help="The organisation's display name.")
@click.pass_context
def org_create(ctx: click.Context, name: str, title: str) -> None:
    """Create an organisation and its namespace of the same name; you become its owner.

    Needs a token with the admin scope.
    """
    organisation = _client(ctx).create_organisation(name, title)
    click.echo(f"created organisation {organisation.name} (namespace {organisation.name})")
    _echo_organisation(organisation)


@org_group.command("list", epilog=example_epilog("medigan-client org list"))
@click.pass_context
def org_list(ctx: click.Context) -> None:
    """List your organisations: name, your role, title."""
    organisations = _client(ctx).organisations()
    if not organisations:
        click.echo("you belong to no organisation", err=True)
    for organisation in organisations:
        click.echo(f"{organisation.name}\t{organisation.role or '-'}\t{organisation.title}")


@org_group.command("show", epilog=example_epilog("medigan-client org show my-lab"))
@click.argument("name")
@click.pass_context
def org_show(ctx: click.Context, name: str) -> None:
    """Show an organisation you belong to and its members."""
    _echo_organisation(_client(ctx).organisation(name))


@org_group.group(
    "member", epilog=example_epilog("medigan-client org member add my-lab bob --role maintainer")
)
def member_group() -> None:
    """Add, change and remove the members of an organisation (owners only)."""


@member_group.command(
    "add", epilog=example_epilog("medigan-client org member add my-lab bob --role maintainer")
)
@click.argument("org")
@click.argument("username", metavar="USER")
@click.option(
    "--role",
    type=click.Choice(ROLE_NAMES),
    default="reader",
    show_default=True,
    help="owner manages members; maintainer pushes; reviewer reviews; reader sees private models.",
)
@click.pass_context
def member_add(ctx: click.Context, org: str, username: str, role: str) -> None:
    """Add USER to ORG with a role, or change their role."""
    organisation = _client(ctx).add_member(org, username, role)
    click.echo(f"{username} is now {role} of {organisation.name}", err=True)
    _echo_organisation(organisation)


@member_group.command(
    "remove", epilog=example_epilog("medigan-client org member remove my-lab bob")
)
@click.argument("org")
@click.argument("username", metavar="USER")
@click.pass_context
def member_remove(ctx: click.Context, org: str, username: str) -> None:
    """Remove USER from ORG."""
    organisation = _client(ctx).remove_member(org, username)
    click.echo(f"{username} was removed from {organisation.name}", err=True)
    _echo_organisation(organisation)


@app.group("namespace")
def namespace_group() -> None:
    """Namespaces: the first part of a model id, where you may push."""


@namespace_group.command(
    "create", epilog=example_epilog("medigan-client namespace create my-tests")
)
@click.argument("name")
@click.pass_context
def namespace_create(ctx: click.Context, name: str) -> None:
    """Create a namespace of your own."""
    namespace = _client(ctx).create_namespace(name)
    click.echo(f"created namespace {namespace.name}")


@namespace_group.command("list", epilog=example_epilog("medigan-client namespace list"))
@click.pass_context
def namespace_list(ctx: click.Context) -> None:
    """List the namespaces you may push into: name and owner (user or organisation)."""
    namespaces = _client(ctx).namespaces()
    if not namespaces:
        click.echo("you may push into no namespace", err=True)
    for namespace in namespaces:
        owner = (
            f"organisation {namespace.organisation}"
            if namespace.organisation
            else f"user {namespace.user or '-'}"
        )
        click.echo(f"{namespace.name}\t{owner}")


def _echo_visibility(state: VisibilityState) -> None:
    click.echo(f"{state.model_id}: {state.visibility}")
    if state.requested is not None:
        by = f" by {state.requested_by}" if state.requested_by else ""
        click.echo(
            f"  requested: {state.requested}{by}; waits for a hub reviewer "
            f"(`medigan-client visibility {state.model_id}` shows when it is decided)"
        )


@app.command()
@click.argument("model", metavar=MODEL_ID)
@click.argument("value", metavar="[public|internal|private]", required=False)
@click.option("--note", default="", help="Why; kept with the change (and shown to the reviewer).")
@click.pass_context
def visibility(ctx: click.Context, model: str, value: str | None, note: str) -> None:
    """Show who may see a model, or change it.

    public: everyone; internal: anyone signed in to the hub; private: members of the
    organisation that owns the namespace. Making a model public waits for a hub reviewer.
    """
    client = _client(ctx)
    if value is None:
        if note:
            raise click.UsageError("--note goes with a new visibility")
        _echo_visibility(client.visibility(model))
        return
    if value not in VISIBILITY_NAMES:
        raise click.BadParameter(
            f"{value!r} is not one of {', '.join(VISIBILITY_NAMES)}", param_hint="VALUE"
        )
    state = client.set_visibility(model, value, note)
    if state.requested is not None:
        click.echo(
            f"the change of {state.model_id} to {state.requested} waits for a hub reviewer; "
            f"until then it stays {state.visibility}",
            err=True,
        )
    _echo_visibility(state)


@app.group("keys")
def keys_group() -> None:
    """The signing keys pinned for each hub (docs/client-federation.md)."""


@keys_group.command("show", epilog=example_epilog("medigan-client keys show institution"))
@click.argument("hub", required=False, metavar="[HUB]")
@click.pass_context
def keys_show(ctx: click.Context, hub: str | None) -> None:
    """List the keys pinned for each hub (or one): hub, key id, pinned since.

    A hub with nothing pinned says so; its next sync pins its key set (or the key its config
    entry names).
    """
    from medigan_client.trust import keys_path, load_pins

    client = _client_without_announcing(ctx)
    entries = [client.hub_entry(hub)] if hub is not None else list(client.hubs)
    for entry in entries:
        settings = client.hub_settings(entry.name) if client.settings.hubs else client.settings
        if not client.settings.hubs and hub is None:
            settings = client.settings
        if not entry.verify:
            click.echo(f"{entry.name}\t(verify = false: signatures not checked)")
            continue
        pins = load_pins(settings)
        if pins is None:
            click.echo(f"{entry.name}\t(nothing pinned yet; the next sync pins the hub's keys)")
            continue
        for key_id in sorted(pins.keys):
            configured = "\tconfigured" if key_id in entry.keys else ""
            click.echo(f"{entry.name}\t{key_id}\t{pins.pinned_at or '-'}{configured}")
        click.echo(
            f"  {entry.url} calls itself {pins.hub!r}; kept in {keys_path(settings)}", err=True
        )


@keys_group.command("forget", epilog=example_epilog("medigan-client keys forget institution"))
@click.argument("hub", metavar="HUB")
@click.pass_context
def keys_forget(ctx: click.Context, hub: str) -> None:
    """Unpin a hub's keys, after confirming its new key with its operator out of band.

    The next sync pins the key set the hub then offers (trust on first use), or checks it
    against the key its config entry names.
    """
    from medigan_client.trust import forget_pins

    client = _client_without_announcing(ctx)
    entry = client.hub_entry(hub)
    settings = client.hub_settings(entry.name) if client.settings.hubs else client.settings
    if forget_pins(settings):
        click.echo(
            f"forgot the keys pinned for {entry.name} ({entry.url}); the next sync pins anew"
        )
    else:
        click.echo(f"no keys were pinned for {entry.name} ({entry.url})")


app.add_command(cache_group)
app.add_command(github_group)
app.add_command(import_medigan_command)


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _error_line(error: ClientError | CatalogError) -> str:
    """The message; for a refusal of access also its code, and what to do about it."""
    line = _one_line(error.message)
    code = error.code.value
    if code not in ACCESS_HINTS:
        return line
    line = f"{line} ({code})"
    retry_after = getattr(error, "retry_after_seconds", None)
    if code == "throttled" and isinstance(retry_after, int | float):
        line += f"; try again in {retry_after:g} s"
    hint = ACCESS_HINTS[code]
    return f"{line}; {hint}" if hint else line


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
        click.echo(f"error: {_error_line(exc)}", err=True)
        return 1
    except (KeyboardInterrupt, click.Abort):
        click.echo("error: interrupted", err=True)
        return 130
    # Without standalone mode click returns the command's value, or an exit status (--help).
    return outcome if isinstance(outcome, int) else 0


if __name__ == "__main__":
    sys.exit(main())
