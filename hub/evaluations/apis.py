"""HTTP API of evaluations: leaderboards, reference sets, and evaluations of a release."""

from __future__ import annotations

from typing import Any, Final

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluation.features import EXTRACTOR_IDS
from evaluation.preprocessing import PreprocessOptions
from hub.api import parameters
from hub.api.errors import ApiError
from hub.api.openapi import error_responses
from hub.api.parsers import LimitedFormParser, LimitedJSONParser
from hub.evaluations import selectors, services
from hub.evaluations.models import Evaluation, ReferenceSet
from hub.registry import selectors as registry_selectors
from hub.registry.models import Release
from medigan_catalog.errors import ErrorCode

# Evaluation seeds are stored in a signed 64-bit column and fed to numpy's SeedSequence, which
# takes no negative number.
SEED_MAX: Final = 2**63 - 1

_LEADERBOARD_PARAMETERS = [
    parameters.query_parameter("extractor", enum=list(EXTRACTOR_IDS)),
    parameters.query_parameter("sort", enum=list(selectors.METRICS)),
    parameters.query_parameter("order", enum=["asc", "desc"]),
]


def _leaderboard_response(request: Request, reference: str | None) -> Response:
    sort = parameters.query_choice(request, "sort", selectors.METRICS, "fid_rs")
    order = parameters.query_choice(request, "order", ["asc", "desc"], "")
    extractor = parameters.query_choice(request, "extractor", EXTRACTOR_IDS, "")
    try:
        rows = selectors.leaderboard(
            reference=reference,
            extractor=extractor or None,
            sort=sort,
            descending=None if not order else order == "desc",
        )
    except ValueError as error:
        raise ApiError(ErrorCode.BAD_REQUEST, str(error)) from error
    return Response(
        {
            "reference": reference,
            "sort": sort,
            "note": "medical-cnn numbers are not comparable with published FID values, which "
            "use ImageNet Inception v3 features",
            "rows": rows,
        }
    )


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


class EvaluationRequestSerializer(serializers.Serializer[Any]):
    reference = serializers.SlugField()
    extractor = serializers.ChoiceField(choices=list(EXTRACTOR_IDS), default="medical-cnn")
    num_samples = serializers.IntegerField(min_value=10, max_value=100_000, default=1000)
    seed = serializers.IntegerField(min_value=0, max_value=SEED_MAX, default=0)
    resize_filter = serializers.ChoiceField(
        choices=["bilinear", "bicubic", "lanczos", "nearest"], default="bilinear"
    )
    normalise = serializers.BooleanField(default=True)


def _evaluation_status(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "id": evaluation.pk,
        "status": evaluation.status,
        "error": evaluation.error,
        "created_at": evaluation.created_at,
        **selectors.evaluation_summary(evaluation),
    }


def _visible_release_or_404(request: Request, namespace: str, name: str, version: str) -> Release:
    parameters.path_ids_check(namespace=namespace, name=name, version=version)
    release = registry_selectors.release_get_visible(
        namespace=namespace, name=name, version=version, user=request.user
    )
    if release is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no release {namespace}/{name}@{version}")
    return release


class ReleaseEvaluationsApi(APIView):
    """Evaluations of one release; staff queue new ones (202)."""

    parser_classes = [LimitedJSONParser, LimitedFormParser]

    def get_permissions(self) -> list[Any]:
        return [IsAdminUser()] if self.request.method == "POST" else []

    @extend_schema(
        parameters=parameters.RELEASE_PATH,
        responses={200: OpenApiTypes.OBJECT, **error_responses(400, 404)},
    )
    def get(self, request: Request, namespace: str, name: str, version: str) -> Response:
        release = _visible_release_or_404(request, namespace, name, version)
        evaluations = release.evaluations.select_related("reference_set").order_by("-created_at")
        return Response({"results": [_evaluation_status(item) for item in evaluations]})

    @extend_schema(
        parameters=parameters.RELEASE_PATH,
        request=EvaluationRequestSerializer,
        responses={
            202: OpenApiTypes.OBJECT,
            **error_responses(400, 401, 403, 404, 409, 413, 415, 503),
        },
    )
    def post(self, request: Request, namespace: str, name: str, version: str) -> Response:
        release = _visible_release_or_404(request, namespace, name, version)
        payload = EvaluationRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        reference_set = ReferenceSet.objects.filter(slug=data["reference"]).first()
        if reference_set is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"no reference set {data['reference']!r}")
        if data["extractor"] not in selectors.extractors_available():
            raise ApiError(
                ErrorCode.BAD_REQUEST,
                f"extractor {data['extractor']} has no weights configured on this hub",
            )
        evaluation = services.evaluation_request(
            release=release,
            reference_set=reference_set,
            extractor_id=data["extractor"],
            num_samples=data["num_samples"],
            seed=data["seed"],
            preprocess=PreprocessOptions(
                resize_filter=data["resize_filter"], normalise=data["normalise"]
            ),
            requested_by=request.user if request.user.is_authenticated else None,
        )
        return Response(_evaluation_status(evaluation), status=status.HTTP_202_ACCEPTED)
