"""Pages: the catalogue of published generative models and the leaderboard."""

from __future__ import annotations

from typing import Any

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
            # Only published releases are listed, but the grid still goes through the
            # access-checked view: there is one way to a grid.
            "grid_url": selectors.release_sample_grid_path(release),
        }
        for release in releases
    ]
    return render(
        request,
        "web/catalog.html",
        {"rows": rows, "query": query, "serial": selectors.catalog_serial_get()},
    )


_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
_PLOT_WIDTH, _PLOT_HEIGHT, _MARGIN = 560, 360, 50


def _scatter_points(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Place each row at (FID_rs, FID_rr) in an SVG of fixed size; colour by modality."""
    points = [row for row in rows if row["fid_rs"] is not None and row["fid_rr_mean"] is not None]
    if not points:
        return {"points": [], "legend": [], "ticks": []}
    top = max(max(row["fid_rs"], row["fid_rr_mean"]) for row in points) * 1.1 or 1.0
    colours: dict[str, str] = {}
    placed = []
    for row in points:
        colour = colours.setdefault(row["modality"], _PALETTE[len(colours) % len(_PALETTE)])
        placed.append(
            {
                "x": _MARGIN + row["fid_rs"] / top * (_PLOT_WIDTH - 2 * _MARGIN),
                "y": _PLOT_HEIGHT
                - _MARGIN
                - row["fid_rr_mean"] / top * (_PLOT_HEIGHT - 2 * _MARGIN),
                "colour": colour,
                "label": f"{row['model_id']} vs {row['reference']}: FID_rs {row['fid_rs']:.2f}, "
                f"FID_rr {row['fid_rr_mean']:.2f}",
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
    from hub.evaluations import selectors as evaluation_selectors

    sort = request.GET.get("sort", "fid_rs")
    if sort not in evaluation_selectors.METRICS:
        sort = "fid_rs"
    order = request.GET.get("order")
    reference = request.GET.get("reference") or None
    extractor = request.GET.get("extractor") or None
    rows = evaluation_selectors.leaderboard(
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
            "metrics": list(evaluation_selectors.METRICS),
            "reference": reference or "",
            "extractor": extractor or "",
            "references": evaluation_selectors.reference_set_list(),
            "plot": _scatter_points(rows),
            "plot_width": _PLOT_WIDTH,
            "plot_height": _PLOT_HEIGHT,
            "margin": _MARGIN,
        },
    )
