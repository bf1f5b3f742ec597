"""``manage.py release_withdraw NS/NAME@VERSION --note WHY``: take a published release out.

An administrator's decision (a licence problem, patient data in the weights): the release leaves
every catalogue, clients and mirrors learn it from the change feed, and its stored artifacts stay
for audit.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.registry import services
from hub.registry.models import Release
from medigan_catalog.errors import CatalogError


class Command(BaseCommand):
    help = "Withdraw a published or deprecated release, as the named administrator."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("release", help="namespace/name@version")
        parser.add_argument("--note", required=True, help="why it is withdrawn (audited)")
        parser.add_argument("--as", dest="admin", required=True, help="an admin's username")

    def handle(self, *args: Any, **options: Any) -> None:
        model_id, _, version = options["release"].rpartition("@")
        namespace, _, name = model_id.partition("/")
        release = Release.objects.filter(
            generative_model__namespace=namespace, generative_model__name=name, version=version
        ).first()
        if release is None:
            raise CommandError(f"no release {options['release']}")
        admin = User.objects.filter(username=options["admin"]).first()
        if admin is None:
            raise CommandError(f"no user {options['admin']}")
        try:
            services.release_withdraw_published(
                release_id=release.pk, actor=admin, note=options["note"]
            )
        except CatalogError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"{release.release_id}: withdrawn")
