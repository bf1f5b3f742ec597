"""Pages: the catalogue of published generative models."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from hub.registry import selectors


def catalog_page(request: HttpRequest) -> HttpResponse:
    """The published models, searchable with ``?q=`` like the API."""
    query = request.GET.get("q", "")
    releases = selectors.model_search(query=query, operator="AND", medigan_semantics=False)
    rows = [
        {
            "model_id": release.model_id,
            "version": release.version,
            "title": (release.card.get("description") or {}).get("title") or release.model_id,
            "modality": ", ".join((release.card.get("selection") or {}).get("modality") or [])[:80],
            "type": (release.card.get("selection") or {}).get("type") or "",
            "hosted": any(artifact.file for artifact in release.artifacts.all()),
            "url": f"/api/v1/models/{release.model_id}/releases/{release.version}",
        }
        for release in releases
    ]
    return render(
        request,
        "web/catalog.html",
        {"rows": rows, "query": query, "serial": selectors.catalog_serial_get()},
    )
