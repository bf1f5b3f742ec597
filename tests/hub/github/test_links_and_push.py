"""Linking a repository to a model (who may, what is shown), and ``push --from-github`` from the
command line against the hub on a live server and the fake GitHub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from django.test import Client as HttpClient

from hub.github.models import GithubLink, GithubSubmission
from hub.registry.models import Release
from medigan_catalog.github import DEFAULT_ASSET_NAME
from medigan_client.cli import app, main
from tests import factories
from tests.github_server import GithubServer
from tests.hub.github.conftest import MODEL, PUBLIC_URL, REPOSITORY, Linked, deliver, ping_body

LINK_URL = f"/api/v1/models/{MODEL}/github"


def _post(key: str | None, body: dict[str, Any], url: str = LINK_URL) -> Any:
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Token {key}"} if key else {}
    return HttpClient().post(url, body, content_type="application/json", **headers)


@pytest.mark.django_db
def test_a_link_shows_its_secret_once(github: GithubServer, linked: Linked) -> None:
    shown = HttpClient().get(LINK_URL, HTTP_AUTHORIZATION=f"Token {linked.token}")

    assert shown.status_code == 200
    body = shown.json()
    assert body["secret"] is None
    assert body["repository"] == REPOSITORY
    assert body["asset_name"] == DEFAULT_ASSET_NAME
    assert body["webhook_url"] == f"http://testserver/api/v1/github/links/{linked.link_id}/webhook"
    assert linked.secret not in shown.content.decode()


@pytest.mark.django_db
def test_linking_again_replaces_the_secret(github: GithubServer, linked: Linked) -> None:
    again = _post(linked.token, {"repository": REPOSITORY, "asset_name": "{name}-{tag}.zip"})

    assert again.status_code == 201
    assert again.json()["secret"] != linked.secret
    assert GithubLink.objects.get().asset_name == "{name}-{tag}.zip"
    assert (
        deliver(linked.webhook_path, ping_body(), secret=linked.secret, event="ping").status_code
        == 401
    )


@pytest.mark.django_db
def test_only_the_models_maintainers_link_it(github: GithubServer) -> None:
    alice = factories.user("alice")
    bob = factories.token(factories.user("bob"))
    alice_reader = factories.token(alice, scopes=("read",))

    anonymous = _post(None, {"repository": REPOSITORY})
    # Before the model exists, a stranger learns nothing of it; once it is public, they see it.
    unborn = _post(bob, {"repository": REPOSITORY})
    factories.release_row(submitter=alice, model_id=MODEL)
    stranger = _post(bob, {"repository": REPOSITORY})
    no_scope = _post(alice_reader, {"repository": REPOSITORY})
    no_namespace = _post(bob, {"repository": REPOSITORY}, "/api/v1/models/nowhere/x/github")

    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "authentication_required")
    assert (unborn.status_code, unborn.json()["code"]) == (404, "not_found")
    assert (stranger.status_code, stranger.json()["code"]) == (403, "permission_denied")
    assert (no_scope.status_code, no_scope.json()["code"]) == (403, "scope_missing")
    assert (no_namespace.status_code, no_namespace.json()["code"]) == (404, "namespace_not_found")
    assert GithubLink.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"repository": "not a repo"},
        {"repository": "owner/repo.git"},
        {"repository": "alice/noise-model", "asset_name": "../{name}.zip"},
        {"repository": "alice/noise-model", "asset_name": "{model}.zip"},
    ],
)
def test_a_malformed_link_is_refused(github: GithubServer, body: dict[str, str]) -> None:
    key = factories.token(factories.user("alice"))

    response = _post(key, body)

    assert (response.status_code, response.json()["code"]) == (400, "bad_request")


@pytest.mark.django_db
def test_an_unlinked_model_refuses_its_webhook(github: GithubServer, linked: Linked) -> None:
    gone = HttpClient().delete(LINK_URL, HTTP_AUTHORIZATION=f"Token {linked.token}")
    shown = HttpClient().get(LINK_URL, HTTP_AUTHORIZATION=f"Token {linked.token}")

    assert gone.status_code == 204
    assert (shown.status_code, shown.json()["code"]) == (404, "not_found")
    assert (
        deliver(linked.webhook_path, ping_body(), secret=linked.secret, event="ping").status_code
        == 401
    )


@pytest.mark.django_db
def test_an_on_demand_submission_is_refused_without_a_link_and_hidden_from_strangers(
    github: GithubServer, linked: Linked, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    github.add_release(REPOSITORY, "v1.0.0", {"notes.txt": b"no package"})
    bob = factories.token(factories.user("bob"))

    unlinked = _post(bob, {"repository": REPOSITORY, "tag": "v1.0.0"}, "/api/v1/github/submissions")
    not_semver = _post(
        linked.token, {"repository": REPOSITORY, "tag": "main"}, "/api/v1/github/submissions"
    )
    with django_capture_on_commit_callbacks(execute=True):
        made = _post(
            linked.token, {"repository": REPOSITORY, "tag": "v1.0.0"}, "/api/v1/github/submissions"
        )
    url = f"/api/v1/github/submissions/{made.json()['id']}"
    mine = HttpClient().get(url, HTTP_AUTHORIZATION=f"Token {linked.token}")
    theirs = HttpClient().get(url, HTTP_AUTHORIZATION=f"Token {bob}")

    assert (unlinked.status_code, unlinked.json()["code"]) == (404, "not_found")
    assert (not_semver.status_code, not_semver.json()["code"]) == (422, "github_tag_not_semver")
    assert made.status_code == 202
    assert (mine.json()["state"], mine.json()["error_code"]) == ("failed", "github_asset_missing")
    assert mine.json()["origin"] == "request"
    assert (theirs.status_code, theirs.json()["code"]) == (404, "not_found")


@pytest.fixture
def cli_env(
    live_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, github: GithubServer
) -> str:
    """The CLI's environment for alice on the live hub; returns her token."""
    key = factories.token(factories.user("alice"))
    monkeypatch.setenv("MEDIGAN_HUB_URL", live_server.url)
    monkeypatch.setenv("MEDIGAN_CACHE_DIR", str(tmp_path / "client-cache"))
    monkeypatch.setenv("MEDIGAN_TOKEN", key)
    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "config.toml"))
    return key


@pytest.mark.django_db(transaction=True)
def test_push_from_github_submits_the_release_through_the_hub(
    cli_env: str, github: GithubServer, tmp_path: Path, live_server: Any
) -> None:
    from tests.hub.github.conftest import package_bytes

    sha = github.add_release(REPOSITORY, "v1.0.0", {"noise-16-1.0.0.zip": package_bytes(tmp_path)})
    runner = CliRunner()

    linked = runner.invoke(app, ["github", "link", MODEL, REPOSITORY], catch_exceptions=False)
    shown = runner.invoke(app, ["github", "show", MODEL], catch_exceptions=False)
    pushed = runner.invoke(
        app, ["push", "--from-github", f"{REPOSITORY}@v1.0.0", "--wait"], catch_exceptions=False
    )

    assert linked.exit_code == 0, linked.output
    assert "secret:" in linked.stdout
    assert f"{live_server.url}/api/v1/github/links/" in linked.stdout
    assert "secret:" not in shown.stdout
    assert pushed.exit_code == 0, pushed.output
    assert f"{REPOSITORY}@v1.0.0 -> {MODEL}@1.0.0: submitted" in pushed.stdout
    assert f"{MODEL}@1.0.0: in_review" in pushed.stdout
    release = Release.objects.get()
    assert (release.version, release.state) == ("1.0.0", "in_review")
    assert GithubSubmission.objects.get().origin == "request"
    assert github.statuses[-1]["sha"] == sha
    assert github.statuses[-1]["state"] == "success"
    assert github.statuses[-1]["target_url"] == f"{PUBLIC_URL}/submissions/alice/noise-16/1.0.0/"


@pytest.mark.django_db(transaction=True)
def test_push_from_github_refuses_a_tag_that_is_not_semver_before_asking_the_hub(
    cli_env: str, github: GithubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = main(["push", "--from-github", f"{REPOSITORY}@latest"])
    error = capsys.readouterr().err
    both = main(["push", "somewhere", "--from-github", f"{REPOSITORY}@v1.0.0"])

    assert refused == 1
    assert "error: the tag 'latest' is not a semantic version" in error
    assert GithubSubmission.objects.count() == 0
    assert both == 2
