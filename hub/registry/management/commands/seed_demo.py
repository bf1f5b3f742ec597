"""``manage.py seed_demo``: the demo — reference sets, the zoo models and medigan's catalogue.

Idempotent: run it again and existing releases are kept. Zoo packages go through submit,
validation (with the sandboxed smoke generation) and approval like any contributor's; their
publication queues their evaluations against the reference sets loaded first. medigan's models
are imported with the DOI of the Zenodo record each package lives on, unpinned until
``manage.py pin_verify`` has checked the record's bytes.

The demo accounts each get a personal namespace and an API token with the scopes their part
needs, written with the passwords to the credentials file: ``admin`` (staff and superuser, every
scope), ``reviewer`` (staff in the reviewers group; read, review), ``contributor`` (read, push,
admin: it may create organisations), ``colleague`` (read, push, review: someone to add to one,
who may review its private releases) and
``visitor`` (read: a signed-in user of no organisation). With
``--log FILE`` (as ``make run`` calls it) the details, one line per reference set and model and
the hub's log records, go to ``FILE`` and the terminal gets a short summary.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.accounts.services import api_token_create, user_get_or_create
from hub.registry.models import Release
from hub.registry.services import medigan_catalog_import, package_publish_as_operator
from medigan_catalog.access import TokenScope
from medigan_catalog.lifecycle import ReleaseState

DEFAULT_MEDIGAN_CATALOG = Path(__file__).resolve().parents[2] / "seed" / "medigan-global.json"
ZOO_DIR = Path(settings.BASE_DIR) / "zoo"


# The demo accounts: who they are, and whether they sign in to the admin with a password.
@dataclass(frozen=True)
class DemoAccount:
    """A demo account: its powers, whether it gets a password, and its token's scopes."""

    scopes: tuple[TokenScope, ...]
    is_staff: bool = False
    is_superuser: bool = False
    reviewer: bool = False
    password: bool = True


DEMO_ACCOUNTS: dict[str, DemoAccount] = {
    "admin": DemoAccount(tuple(TokenScope), is_staff=True, is_superuser=True),
    "reviewer": DemoAccount((TokenScope.READ, TokenScope.REVIEW), is_staff=True, reviewer=True),
    "contributor": DemoAccount(
        (TokenScope.READ, TokenScope.PUSH, TokenScope.ADMIN), password=False
    ),
    "colleague": DemoAccount((TokenScope.READ, TokenScope.PUSH, TokenScope.REVIEW)),
    "visitor": DemoAccount((TokenScope.READ,)),
}
_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def _logging_to(stream: TextIO) -> Iterator[None]:
    """Send the root logger's records (the hub's, kombu's) to ``stream`` for the duration."""
    root = logging.getLogger()
    saved = root.handlers[:]
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    root.handlers = [handler]
    try:
        yield
    finally:
        root.handlers = saved


def _zoo_release(package_dir: Path) -> Release | None:
    """The hub's release of a zoo package's card (model and version), if it has one."""
    card = json.loads((package_dir / "card.json").read_text(encoding="utf-8"))
    namespace, name = card["model_id"].split("/", 1)
    return Release.objects.filter(
        generative_model__namespace=namespace, generative_model__name=name, version=card["version"]
    ).first()


def _read_catalog(source: str) -> dict[str, Any]:
    if source.startswith(("http://", "https://")):
        import httpx

        response = httpx.get(source, timeout=30.0, follow_redirects=True)
        response.raise_for_status()
        data = response.json()
    else:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise CommandError(f"{source} is not a medigan global.json (expected an object)")
    return data


class Command(BaseCommand):
    help = "Seed the demo: zoo models through the review path, medigan's catalogue as imports."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--medigan-catalog",
            default=str(DEFAULT_MEDIGAN_CATALOG),
            help="path or URL of medigan's global.json (default: the copy shipped with the hub)",
        )
        parser.add_argument("--skip-zoo", action="store_true", help="do not publish zoo models")
        parser.add_argument(
            "--zoo",
            action="append",
            default=None,
            metavar="NAME",
            help="publish only this zoo folder (repeatable; default: every zoo/*/package)",
        )
        parser.add_argument(
            "--credentials",
            default=str(Path(settings.DATA_DIR) / "demo-credentials.json"),
            help="where to write the demo accounts' passwords and API tokens",
        )
        parser.add_argument(
            "--log",
            default=None,
            metavar="FILE",
            help="append the details (and the hub's log records) to FILE; print a summary",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        log_path = Path(options["log"]) if options["log"] else None
        with contextlib.ExitStack() as stack:
            if log_path is None:
                details: Any = self.stdout
            else:
                log_path.parent.mkdir(parents=True, exist_ok=True)
                details = stack.enter_context(log_path.open("a", encoding="utf-8"))
                stack.enter_context(_logging_to(details))
            self._details = details
            summary = self._seed(options)
        if log_path is not None:
            summary.append(f"details: {log_path}")
        self.stdout.write("\n".join(summary))

    def _detail(self, line: str) -> None:
        self._details.write(line + "\n")
        self._details.flush()

    def _seed(self, options: dict[str, Any]) -> list[str]:
        """Seed the demo, writing details as it goes; return the summary's lines."""
        credentials_path = Path(options["credentials"])
        operator = user_get_or_create(
            username="hub-operator", is_staff=True, is_superuser=False, reviewer=True
        )
        self._ensure_demo_accounts(credentials_path)
        # Reference sets first: publishing a zoo model queues its evaluations against them.
        call_command("reference_sets_load", stdout=self._details)
        zoo = [
            card_path.parent
            for card_path in sorted(ZOO_DIR.glob("*/package/card.json"))
            if not options["skip_zoo"]
            and (options["zoo"] is None or card_path.parent.parent.name in options["zoo"])
        ]
        pending = [package_dir for package_dir in zoo if _zoo_release(package_dir) is None]
        if pending and self._details is not self.stdout:
            self.stdout.write(
                f"Seeding the demo: {len(pending)} zoo models through validation and review "
                "(a minute or two)..."
            )
        published = sum(self._publish_zoo_package(package_dir, operator) for package_dir in zoo)
        raw = _read_catalog(options["medigan_catalog"])
        created, warnings = medigan_catalog_import(
            raw_catalog=raw, actor=operator, source="medigan global.json"
        )
        for warning in warnings:
            self._detail(f"  normalised: {warning}")
        self._detail(
            f"medigan catalogue: {len(created)} releases imported, "
            f"{len(raw) - len(created)} already present"
        )
        with_doi = sum(1 for release in created if release.doi)
        if with_doi:
            # Recorded from each package's Zenodo record, not yet checked against its bytes.
            self._detail(
                f"  {with_doi} Zenodo DOIs recorded unpinned; `manage.py pin_verify --namespace "
                "medigan` checks them against Zenodo and serves the packages from this hub"
            )
        medigan = f"medigan's {len(raw)} models (their packages live on Zenodo)"
        catalogue = (
            f"Demo catalogue: {len(zoo)} zoo models ({published} published now; the gpu worker "
            f"evaluates each one and fills /leaderboard/) and {medigan}."
            if zoo
            else f"Demo catalogue: {medigan}."
        )
        return [
            catalogue,
            f"Demo accounts {', '.join(DEMO_ACCOUNTS)}, with API tokens: {credentials_path}",
        ]

    def _publish_zoo_package(self, package_dir: Path, operator: Any) -> bool:
        """Publish one zoo package unless it is there already; True when published now."""
        existing = _zoo_release(package_dir)
        if existing is not None:
            self._detail(f"{existing.release_id}: already {existing.state}")
            return False
        release = package_publish_as_operator(
            package_dir=package_dir, operator=operator, note="zoo model seeded by seed_demo"
        )
        if release.state != ReleaseState.PUBLISHED:
            failures = "; ".join(
                f"{check.name}: {check.message}" for check in release.checks.filter(status="failed")
            )
            raise CommandError(f"{release.release_id} was {release.state}: {failures}")
        self._detail(f"{release.release_id}: published through validation and review")
        return True

    def _ensure_demo_accounts(self, credentials_path: Path) -> None:
        """Create the demo accounts and write their credentials; complete an older file.

        Tokens are stored hashed, so the file is the only place their keys are kept: an account
        the file has no token for (a file written before reviewers and admins had one) gets a
        new one, and passwords already in the file are kept.
        """
        credentials: dict[str, dict[str, str]] = (
            json.loads(credentials_path.read_text(encoding="utf-8"))
            if credentials_path.exists()
            else {}
        )
        changed = False
        for username, kind in DEMO_ACCOUNTS.items():
            entry = dict(credentials.get(username) or {})
            password = None
            if kind.password and "password" not in entry:
                password = entry["password"] = secrets.token_urlsafe(12)
            user = user_get_or_create(
                username=username,
                password=password,
                is_staff=kind.is_staff,
                is_superuser=kind.is_superuser,
                reviewer=kind.reviewer,
            )
            if "token" not in entry:
                entry["token"] = api_token_create(user=user, name="demo", scopes=kind.scopes)[1]
            entry = {"username": username, **entry}
            if entry != credentials.get(username):
                credentials[username] = entry
                changed = True
        if not changed:
            return
        credentials_path.parent.mkdir(parents=True, exist_ok=True)
        credentials_path.write_text(json.dumps(credentials, indent=2), encoding="utf-8")
        credentials_path.chmod(0o600)
        self._detail(f"demo accounts and their API tokens written to {credentials_path}")
