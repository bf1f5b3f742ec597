"""Reads of federation: the upstreams and what came from each."""

from __future__ import annotations

from django.db.models import QuerySet

from hub.federation.models import Upstream, UpstreamEvent


def upstream_list() -> QuerySet[Upstream]:
    """Every configured upstream, by name."""
    return Upstream.objects.order_by("name")


def upstream_events(upstream: Upstream, *, limit: int = 50) -> list[UpstreamEvent]:
    """The newest events of an upstream, newest first."""
    return list(upstream.events.order_by("-id")[:limit])
