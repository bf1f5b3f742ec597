"""The ``medigan-client github`` commands: ``link``, ``show``, ``unlink`` and ``status``.

``link`` prints the webhook's URL and secret (the secret this once) and how to set the webhook
up on GitHub. Submitting a release on demand is ``medigan-client push --from-github
owner/repo@tag``. The work is done by :mod:`medigan_client.github`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from medigan_client.api import Client
from medigan_client.errors import BadRequestError

if TYPE_CHECKING:
    from medigan_catalog.github import GithubLinkInfo, GithubSubmissionInfo

# medigan_catalog.github.DEFAULT_ASSET_NAME, written out so that the option needs no pydantic at
# start-up (client/tests/test_github_cli.py keeps them equal).
DEFAULT_ASSET_NAME = "{name}-{version}.zip"


def _example(example: str) -> str:
    # As medigan_client.cli.example_epilog (which imports this module): click keeps it as is.
    return f"\b\nExample:\n  {example}"


def _client(ctx: click.Context) -> Client:
    client = ctx.find_object(Client)
    if client is None:  # a command invoked without the group callback
        raise BadRequestError("internal: the client was not configured")
    return client


def echo_link(link: GithubLinkInfo) -> None:
    """A link's fields, one per line (the secret on stdout only when the hub gave it)."""
    click.echo(f"model:        {link.model_id}")
    click.echo(f"repository:   {link.repository}")
    click.echo(f"asset:        {link.asset_name}")
    click.echo(f"webhook URL:  {link.webhook_url}")
    click.echo(f"content type: {link.content_type}")
    click.echo(f"events:       {', '.join(link.events)}")
    if link.last_delivery_at is not None:
        click.echo(f"last delivery: {link.last_delivery_at.isoformat()}")
    if link.secret is not None:
        click.echo(f"secret:       {link.secret}")


def echo_submission(submission: GithubSubmissionInfo) -> None:
    """A submission's state in one line, and its release and message when there are any."""
    click.echo(
        f"{submission.repository}@{submission.tag} -> {submission.model_id}@{submission.version}:"
        f" {submission.state} (submission {submission.id})"
    )
    if submission.release:
        click.echo(f"  release: {submission.release} ({submission.release_state})")
    if submission.message:
        click.echo(f"  {submission.message}")


@click.group(
    name="github",
    epilog="\b\nExample:\n  medigan-client github link my-lab/my-model my-lab/my-model-repo",
)
def github_group() -> None:
    """Link a model to a GitHub repository whose published releases the hub submits."""


@github_group.command(
    "link", epilog=_example("medigan-client github link my-lab/my-model my-lab/my-model-repo")
)
@click.argument("model", metavar="NS/NAME")
@click.argument("repository", metavar="OWNER/REPO")
@click.option(
    "--asset",
    "asset_name",
    default=DEFAULT_ASSET_NAME,
    show_default=True,
    help="The release asset that holds the package zip; may use {name}, {version} and {tag}.",
)
@click.pass_context
def github_link(ctx: click.Context, model: str, repository: str, asset_name: str) -> None:
    """Link REPOSITORY to MODEL (its maintainers); prints the webhook's URL and secret.

    The secret is shown this once: add a webhook to the repository with that URL and secret,
    content type application/json, and the "Releases" event. Linking again replaces the link
    and its secret.
    """
    from medigan_client.github import link_repository

    link = link_repository(_client(ctx).session, model, repository, asset_name=asset_name)
    echo_link(link)
    click.echo(
        "add a webhook to the repository (Settings > Webhooks) with this URL and secret, content "
        "type application/json, event 'Releases'; the secret is not shown again",
        err=True,
    )


@github_group.command("show", epilog=_example("medigan-client github show my-lab/my-model"))
@click.argument("model", metavar="NS/NAME")
@click.pass_context
def github_show(ctx: click.Context, model: str) -> None:
    """Print MODEL's GitHub link (never its secret)."""
    from medigan_client.github import get_link

    echo_link(get_link(_client(ctx).session, model))


@github_group.command("unlink", epilog=_example("medigan-client github unlink my-lab/my-model"))
@click.argument("model", metavar="NS/NAME")
@click.pass_context
def github_unlink(ctx: click.Context, model: str) -> None:
    """Remove MODEL's GitHub link; the hub refuses its webhook from then on."""
    from medigan_client.github import unlink_repository

    unlink_repository(_client(ctx).session, model)
    click.echo(f"unlinked {model}")


@github_group.command("status", epilog=_example("medigan-client github status 12"))
@click.argument("submission_id", metavar="ID", type=int)
@click.pass_context
def github_status(ctx: click.Context, submission_id: int) -> None:
    """Print the state of a submission from GitHub (its id is printed by push --from-github)."""
    from medigan_client.github import submission_status

    echo_submission(submission_status(_client(ctx).session, submission_id))


def push_from_github(
    client: Client, release_ref: str, model: str | None, wait: bool, wait_timeout: float
) -> None:
    """``push --from-github``: ask the hub to fetch and submit the release, wait until it has,
    and with ``wait`` also for its checks, as a PACKAGE_DIR push does."""
    from medigan_client.github import push_from_github as submit
    from medigan_client.github import wait_for_submission

    submission = submit(client.session, release_ref, model=model)
    click.echo(
        f"asked the hub to fetch {submission.repository}@{submission.tag} "
        f"(submission {submission.id})",
        err=True,
    )
    submission = wait_for_submission(client.session, submission, timeout=wait_timeout)
    echo_submission(submission)
    if submission.release_url:
        click.echo(submission.release_url)
    if wait and submission.release:
        click.echo(f"waiting for the hub's checks of {submission.release} ...", err=True)
        status = client.wait_for_checks(submission.release, timeout=wait_timeout)
        click.echo(f"{submission.release}: {status.get('state')}")
