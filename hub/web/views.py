"""Pages: the catalogue of published generative models, each model's page, the leaderboard."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from hub import signing
from hub.access import request_viewer
from hub.evaluations import selectors as evaluation_selectors
from hub.registry import selectors
from hub.snapshot import scope_serial_state
from hub.web import catalogue
from hub.web import model_page as model_pages
from medigan_catalog.modality import MODALITY_FAMILIES, modality_family
from medigan_catalog.snapshot import (
    METRICS,
    LeaderboardRow,
    UnknownMetricError,
    metric_named,
)

_PAGE_SIZE = 25


def catalog_page(request: HttpRequest) -> HttpResponse:
    """The published models: words and ``key=value`` filters as on the CLI, facets, sorting,
    pages of 25, a thumbnail of each sample grid."""
    query = request.GET.get("q", "")
    sort = request.GET.get("sort", "relevance")
    sort = sort if sort in catalogue.SORTS else "relevance"
    chosen = {key: request.GET.get(key, "") for key in catalogue.FACET_KEYS}
    viewer = request_viewer(request)
    found = selectors.model_search(
        query=query, operator="AND", medigan_semantics=False, viewer=viewer
    )
    context = catalogue.FacetContext(
        evaluated_release_ids=frozenset(
            evaluation_selectors.evaluation_summaries_of_releases(
                entry.release.pk for entry in found
            )
        ),
        hub_name=signing.hub_name(),
    )
    entries = catalogue.entries_sorted(catalogue.entries_narrowed(found, chosen, context), sort)
    page = Paginator(entries, _PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "model_id": entry.card.model_id,
            "version": entry.card.version,
            "title": entry.card.title,
            "modality": ", ".join(entry.card.selection.modality or [])[:80],
            "type": entry.card.selection.type or "",
            "hub": entry.release.origin_hub or context.hub_name,
            "evaluated": entry.release.pk in context.evaluated_release_ids,
            "url": reverse(
                "model-page",
                kwargs={
                    "namespace": entry.release.generative_model.namespace,
                    "name": entry.release.generative_model.name,
                },
            ),
            # Only published releases are listed, but the grid still goes through the
            # access-checked view: there is one way to a grid.
            "grid_url": selectors.release_sample_grid_path(entry.release),
        }
        for entry in page.object_list
    ]
    kept = {key: value for key, value in chosen.items() if value}
    return render(
        request,
        "web/catalog.html",
        {
            "rows": rows,
            "page": page,
            "total": len(entries),
            "query": query,
            "sort": sort,
            "sorts": catalogue.SORTS,
            "chosen": kept,
            "facets": catalogue.facet_counts(found, chosen, context),
            # The page links keep the search, facets and sort.
            "state": urlencode({"q": query, "sort": sort, **kept}),
            "serial": scope_serial_state(viewer.catalog_scope()).serial,
        },
    )


def model_page(
    request: HttpRequest, namespace: str, name: str, version: str | None = None
) -> HttpResponse:
    """A model's page: its card as text, grid, versions, checks, evaluations, snippets."""
    page = model_pages.model_page(
        namespace=namespace, name=name, version=version, viewer=request_viewer(request)
    )
    if page is None:
        raise Http404("no such model, or not visible to you")
    return render(request, "web/model.html", {"page": page, "card": page.card})


# One colour per modality family (medigan_catalog.modality), the same on every visit;
# chosen to stay apart for the common kinds of colour blindness (Okabe and Ito's palette).
_FAMILY_COLOURS = dict(
    zip(
        (*MODALITY_FAMILIES, "other"),
        (
            "#0072B2",
            "#D55E00",
            "#009E73",
            "#CC79A7",
            "#E69F00",
            "#56B4E9",
            "#8B6D00",
            "#000000",
            "#777777",
        ),
        strict=True,
    )
)
_PLOT_WIDTH, _PLOT_HEIGHT, _MARGIN = 560, 360, 50


def _scatter_points(rows: list[LeaderboardRow]) -> dict[str, Any]:
    """Place each row at (FID_rs, FID_rr) in an SVG of fixed size; colour by modality family."""
    points = [
        (row, row.fid_rs, row.fid_rr_mean)
        for row in rows
        if row.fid_rs is not None and row.fid_rr_mean is not None
    ]
    if not points:
        return {"points": [], "legend": [], "ticks": []}
    top = max(max(fid_rs, fid_rr) for _, fid_rs, fid_rr in points) * 1.1 or 1.0
    families: dict[str, str] = {}
    placed = []
    for row, fid_rs, fid_rr in points:
        family = modality_family(row.modality)
        colour = families.setdefault(family, _FAMILY_COLOURS[family])
        placed.append(
            {
                "x": _MARGIN + fid_rs / top * (_PLOT_WIDTH - 2 * _MARGIN),
                "y": _PLOT_HEIGHT - _MARGIN - fid_rr / top * (_PLOT_HEIGHT - 2 * _MARGIN),
                "colour": colour,
                "model_id": row.model_id,
                "version": row.version,
                "label": f"{row.model_id} {row.version} ({family}): FID vs reference "
                f"{fid_rs:.2f}, FID real vs real {fid_rr:.2f}",
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
            for index, (name, colour) in enumerate(sorted(families.items()))
        ],
        "ticks": ticks,
        "diagonal": {
            "x2": _PLOT_WIDTH - _MARGIN,
            "y2": _MARGIN,
        },
    }


def leaderboard_page(request: HttpRequest) -> HttpResponse:
    """The leaderboard of one reference set (by default the one with the most rows): a sortable
    table with readable column names and the FID_rr against FID_rs plot, one colour per
    modality family, each point labelled on hover and linked to its model's page."""
    try:
        sort = metric_named(request.GET.get("sort", "fid_rs")).field
    except UnknownMetricError:
        sort = "fid_rs"
    order = request.GET.get("order")
    extractor = request.GET.get("extractor") or None
    every_row = evaluation_selectors.leaderboard(
        viewer=request_viewer(request),
        extractor=extractor,
        sort=sort,
        descending=None if order not in {"asc", "desc"} else order == "desc",
    )
    counts = Counter(row.reference for row in every_row)
    reference = request.GET.get("reference") or (counts.most_common(1)[0][0] if counts else "")
    rows = [row for row in every_row if row.reference == reference]
    return render(
        request,
        "web/leaderboard.html",
        {
            "rows": rows,
            "sort": sort,
            "metrics": [(metric.field, metric.label) for metric in METRICS],
            "reference": reference,
            "extractor": extractor or "",
            "references": [
                {"slug": item.slug, "title": item.title, "rows": counts.get(item.slug, 0)}
                for item in evaluation_selectors.reference_set_list()
            ],
            "extractors": sorted({row.extractor for row in every_row}),
            "plot": _scatter_points(rows),
            "plot_width": _PLOT_WIDTH,
            "plot_height": _PLOT_HEIGHT,
            "margin": _MARGIN,
        },
    )
