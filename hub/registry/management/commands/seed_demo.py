"""``manage.py seed_demo``: the demo — reference sets, the zoo models and medigan's catalogue.

Idempotent: run it again and existing releases are kept. Zoo packages go through submit,
validation (with the sandboxed smoke generation) and approval like any contributor's.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.accounts.services import api_token_create, user_get_or_create
from hub.registry.models import Release
from hub.registry.services import medigan_catalog_import, package_publish_as_operator
from medigan_catalog.lifecycle import ReleaseState

DEFAULT_MEDIGAN_CATALOG = Path(__file__).resolve().parents[2] / "seed" / "medigan-global.json"
ZOO_DIR = Path(settings.BASE_DIR) / "zoo"


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
            help="where to write the demo accounts' passwords and token",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        operator = user_get_or_create(
            username="hub-operator", is_staff=True, is_superuser=False, reviewer=True
        )
        self._ensure_demo_accounts(Path(options["credentials"]))
        # Reference sets first: publishing a zoo model queues its evaluations against them.
        call_command("reference_sets_load", stdout=self.stdout)
        if not options["skip_zoo"]:
            for card_path in sorted(ZOO_DIR.glob("*/package/card.json")):
                if options["zoo"] is None or card_path.parent.parent.name in options["zoo"]:
                    self._publish_zoo_package(card_path.parent, operator)
        raw = _read_catalog(options["medigan_catalog"])
        created, warnings = medigan_catalog_import(
            raw_catalog=raw, actor=operator, source="medigan global.json"
        )
        for warning in warnings:
            self.stdout.write(f"  normalised: {warning}")
        self.stdout.write(
            f"medigan catalogue: {len(created)} releases imported, "
            f"{len(raw) - len(created)} already present"
        )

    def _publish_zoo_package(self, package_dir: Path, operator: Any) -> None:
        card = json.loads((package_dir / "card.json").read_text(encoding="utf-8"))
        namespace, name = card["model_id"].split("/", 1)
        existing = Release.objects.filter(
            generative_model__namespace=namespace,
            generative_model__name=name,
            version=card["version"],
        ).first()
        if existing is not None:
            self.stdout.write(f"{existing.release_id}: already {existing.state}")
            return
        release = package_publish_as_operator(
            package_dir=package_dir, operator=operator, note="zoo model seeded by seed_demo"
        )
        if release.state != ReleaseState.PUBLISHED:
            failures = "; ".join(
                f"{check.name}: {check.message}" for check in release.checks.filter(status="failed")
            )
            raise CommandError(f"{release.release_id} was {release.state}: {failures}")
        self.stdout.write(f"{release.release_id}: published through validation and review")

    def _ensure_demo_accounts(self, credentials_path: Path) -> None:
        if credentials_path.exists():
            return
        passwords = {name: secrets.token_urlsafe(12) for name in ("admin", "reviewer")}
        user_get_or_create(
            username="admin", password=passwords["admin"], is_staff=True, is_superuser=True
        )
        user_get_or_create(
            username="reviewer", password=passwords["reviewer"], is_staff=True, reviewer=True
        )
        contributor = user_get_or_create(username="contributor")
        _, token = api_token_create(user=contributor, name="demo")
        credentials_path.parent.mkdir(parents=True, exist_ok=True)
        credentials_path.write_text(
            json.dumps(
                {
                    "admin": {"username": "admin", "password": passwords["admin"]},
                    "reviewer": {"username": "reviewer", "password": passwords["reviewer"]},
                    "contributor": {"username": "contributor", "token": token},
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        credentials_path.chmod(0o600)
        self.stdout.write(f"demo accounts written to {credentials_path}")
