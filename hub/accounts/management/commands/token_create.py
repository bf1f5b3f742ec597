"""``manage.py token_create USER [--name N] [--scope S ...] [--namespace NS] [--days D]``: create
an API token and print its key once."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hub.accounts.services import api_token_create
from medigan_catalog.access import DEFAULT_TOKEN_DAYS, TokenScope
from medigan_catalog.errors import CatalogError


class Command(BaseCommand):
    help = "Create an API token for a user and print its key (shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")
        parser.add_argument(
            "--scope",
            action="append",
            choices=[scope.value for scope in TokenScope],
            help="a scope of the token (repeat for several; default: every scope, as an "
            "operator's token had before scopes existed)",
        )
        parser.add_argument("--namespace", help="restrict the token to this namespace")
        parser.add_argument(
            "--days",
            type=int,
            default=DEFAULT_TOKEN_DAYS,
            help=f"lifetime in days (default {DEFAULT_TOKEN_DAYS}; 0: never expires)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user named {options['username']!r}")
        scopes = options["scope"] or [scope.value for scope in TokenScope]
        try:
            _, raw_key = api_token_create(
                user=user,
                name=options["name"],
                scopes=scopes,
                namespace=options["namespace"],
                expires_in_days=options["days"] or None,
            )
        except CatalogError as error:
            raise CommandError(error.message) from error
        self.stdout.write(raw_key)
