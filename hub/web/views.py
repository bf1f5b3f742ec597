"""Pages: the catalogue of published generative models and the leaderboard."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from hub.access import request_viewer
from hub.evaluations import selectors as evaluation_selectors
from hub.registry import selectors
from hub.snapshot import scope_serial_state
from medigan_catalog.snapshot import (
    METRIC_FIELDS,
    LeaderboardRow,
    UnknownMetricError,
    metric_named,
    release_path,
)


def catalog_page(request: HttpRequest) -> HttpResponse:
    """The published models, searchable with ``?q=`` like the API."""
    query = request.GET.get("q", "")
    viewer = request_viewer(request)
    entries = selectors.model_search(
        query=query, operator="AND", medigan_semantics=False, viewer=viewer
    )
    rows = [
        {
            "model_id": entry.card.model_id,
            "version": entry.card.version,
            "title": entry.card.title,
            "modality": ", ".join(entry.card.selection.modality or [])[:80],
            "type": entry.card.selection.type or "",
            "hosted": any(artifact.file for artifact in entry.release.artifacts.all()),
            "url": release_path(entry.card.model_id, entry.card.version),
            # Only published releases are listed, but the grid still goes through the
            # access-checked view: there is one way to a grid.
            "grid_url": selectors.release_sample_grid_path(entry.release),
        }
        for entry in entries
    ]
    return render(
        request,
        "web/catalog.html",
        {
            "rows": rows,
            "query": query,
            "serial": scope_serial_state(viewer.catalog_scope()).serial,
        },
    )


_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
_PLOT_WIDTH, _PLOT_HEIGHT, _MARGIN = 560, 360, 50


def _scatter_points(rows: list[LeaderboardRow]) -> dict[str, Any]:
    """Place each row at (FID_rs, FID_rr) in an SVG of fixed size; colour by modality."""
    points = [
        (row, row.fid_rs, row.fid_rr_mean)
        for row in rows
        if row.fid_rs is not None and row.fid_rr_mean is not None
    ]
    if not points:
        return {"points": [], "legend": [], "ticks": []}
    top = max(max(fid_rs, fid_rr) for _, fid_rs, fid_rr in points) * 1.1 or 1.0
    colours: dict[str, str] = {}
    placed = []
    for row, fid_rs, fid_rr in points:
        colour = colours.setdefault(row.modality, _PALETTE[len(colours) % len(_PALETTE)])
        placed.append(
            {
                "x": _MARGIN + fid_rs / top * (_PLOT_WIDTH - 2 * _MARGIN),
                "y": _PLOT_HEIGHT - _MARGIN - fid_rr / top * (_PLOT_HEIGHT - 2 * _MARGIN),
                "colour": colour,
                "label": f"{row.model_id} vs {row.reference}: FID_rs {fid_rs:.2f}, "
                f"FID_rr {fid_rr:.2f}",
            }
        )
    ticks = [
        {
            "value": f"{top * fraction:.1f}",
            "x": _MARGIN + fraction * (_PLOT_WIDTH - 2 * _MARGIN),
            "y": _PLOT_HEIGHT - _MARGIN - fraction * (_PLOT_HEIGHT - 2 * _MARGIN),
        }
        for fraction in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    return {
        "points": placed,
        "legend": [
            {"modality": name, "colour": colour, "y": 20 + 16 * index}
            for index, (name, colour) in enumerate(colours.items())
        ],
        "ticks": ticks,
        "diagonal": {
            "x2": _PLOT_WIDTH - _MARGIN,
            "y2": _MARGIN,
        },
    }


def leaderboard_page(request: HttpRequest) -> HttpResponse:
    """The leaderboard: a sortable table and the FID_rr against FID_rs scatter plot."""
    try:
        sort = metric_named(request.GET.get("sort", "fid_rs")).field
    except UnknownMetricError:
        sort = "fid_rs"
    order = request.GET.get("order")
    reference = request.GET.get("reference") or None
    extractor = request.GET.get("extractor") or None
    rows = evaluation_selectors.leaderboard(
        viewer=request_viewer(request),
        reference=reference,
        extractor=extractor,
        sort=sort,
        descending=None if order not in {"asc", "desc"} else order == "desc",
    )
    return render(
        request,
        "web/leaderboard.html",
        {
            "rows": rows,
            "sort": sort,
            "metrics": list(METRIC_FIELDS),
            "reference": reference or "",
            "extractor": extractor or "",
            "references": evaluation_selectors.reference_set_list(),
            "plot": _scatter_points(rows),
            "plot_width": _PLOT_WIDTH,
            "plot_height": _PLOT_HEIGHT,
            "margin": _MARGIN,
        },
    )
