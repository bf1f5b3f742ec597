"""``manage.py signing_key show|rotate``: this hub's catalogue signing keys (hub/signing.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from hub import signing


class Command(BaseCommand):
    help = (
        "Show this hub's signing keys, or rotate: make a new key and retire the current ones "
        "after an overlap (both sign until then, so clients and mirrors follow the rotation)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["show", "rotate"])
        parser.add_argument(
            "--overlap-days",
            type=float,
            default=signing.DEFAULT_OVERLAP.days,
            help="how long the old keys keep signing after a rotation (default 14)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "rotate":
            created = signing.rotate(overlap=timedelta(days=options["overlap_days"]))
            self.stdout.write(f"new key {created.key_id}")
        self.stdout.write(f"hub {signing.hub_name()}, keys in {signing.key_dir()}:")
        active = {key.key_id for key in signing.active_keys()}
        for key in signing.all_keys():
            state = "signing" if key.key_id in active else "retired"
            retires = f", retires {key.retires_at.isoformat()}" if key.retires_at else ""
            self.stdout.write(
                f"  {key.key_id}  {state}, made {key.created_at.isoformat()}{retires}"
            )
