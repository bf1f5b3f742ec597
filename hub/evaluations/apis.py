"""HTTP API of evaluations: leaderboards and reference sets.

The evaluations of one release are answered by ``hub.snapshot``, which sits above the registry
(whose visibility rules decide who sees the release) and this app.
"""

from __future__ import annotations

from typing import Final

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluation.features import EXTRACTOR_IDS
from hub.access import request_viewer
from hub.api import parameters
from hub.api.errors import ApiError
from hub.api.openapi import error_responses
from hub.evaluations import selectors
from hub.evaluations.models import ReferenceSet
from medigan_catalog.errors import ErrorCode
from medigan_catalog.snapshot import METRICS, Leaderboard, metric_named

# A leaderboard sorts by a metric's field or by one of its aliases (``fid`` is ``fid_rs``).
SORT_NAMES: Final = [name for metric in METRICS for name in (metric.field, *metric.aliases)]
LEADERBOARD_NOTE: Final = (
    "medical-cnn numbers are not comparable with published FID values, which use ImageNet "
    "Inception v3 features"
)

_LEADERBOARD_PARAMETERS = [
    parameters.query_parameter("extractor", enum=list(EXTRACTOR_IDS)),
    parameters.query_parameter("sort", enum=SORT_NAMES),
    parameters.query_parameter("order", enum=["asc", "desc"]),
]


def _leaderboard_response(request: Request, reference: str | None) -> Response:
    sort = metric_named(parameters.query_choice(request, "sort", SORT_NAMES, "fid_rs")).field
    order = parameters.query_choice(request, "order", ["asc", "desc"], "")
    extractor = parameters.query_choice(request, "extractor", EXTRACTOR_IDS, "")
    rows = selectors.leaderboard(
        viewer=request_viewer(request),
        reference=reference,
        extractor=extractor or None,
        sort=sort,
        descending=None if not order else order == "desc",
    )
    board = Leaderboard(reference=reference, sort=sort, note=LEADERBOARD_NOTE, rows=tuple(rows))
    return Response(board.model_dump(mode="json"))


class LeaderboardApi(APIView):
    """Hub-computed metrics of published releases, across reference sets."""

    @extend_schema(
        parameters=[
            parameters.query_parameter("reference", rule="reference"),
            *_LEADERBOARD_PARAMETERS,
        ],
        responses={200: OpenApiTypes.OBJECT, **error_responses(400)},
    )
    def get(self, request: Request) -> Response:
        return _leaderboard_response(
            request, parameters.query_id(request, "reference", "reference")
        )


class LeaderboardReferenceApi(APIView):
    """The leaderboard of one reference set."""

    @extend_schema(
        operation_id="v1_leaderboards_reference_retrieve",
        parameters=[parameters.REFERENCE, *_LEADERBOARD_PARAMETERS],
        responses={200: OpenApiTypes.OBJECT, **error_responses(400, 404)},
    )
    def get(self, request: Request, reference: str) -> Response:
        parameters.path_ids_check(reference=reference)
        if not ReferenceSet.objects.filter(slug=reference).exists():
            raise ApiError(ErrorCode.NOT_FOUND, f"no reference set {reference!r}")
        return _leaderboard_response(request, reference)


class ReferenceSetSerializer(serializers.ModelSerializer[ReferenceSet]):
    class Meta:
        model = ReferenceSet
        fields = [
            "slug",
            "title",
            "modality",
            "split",
            "licence",
            "citation",
            "source",
            "image_count",
            "height",
            "width",
            "channels",
            "images_sha256",
        ]


class ReferenceSetListApi(APIView):
    """The reference sets this hub evaluates against, with their provenance."""

    @extend_schema(
        responses=inline_serializer(
            "ReferenceSetList", {"results": ReferenceSetSerializer(many=True)}
        )
    )
    def get(self, request: Request) -> Response:
        data = ReferenceSetSerializer(selectors.reference_set_list(), many=True).data
        return Response({"results": data})
