"""HTTP API of evaluations: leaderboards, reference sets, and evaluations of a release."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evaluation.features import EXTRACTOR_IDS
from evaluation.preprocessing import PreprocessOptions
from hub.api.errors import ApiError
from hub.evaluations import selectors, services
from hub.evaluations.models import Evaluation, ReferenceSet
from hub.registry import selectors as registry_selectors
from medigan_catalog.errors import ErrorCode

_LEADERBOARD_PARAMETERS = [
    OpenApiParameter("extractor", str, enum=list(EXTRACTOR_IDS)),
    OpenApiParameter("sort", str, enum=list(selectors.METRICS)),
    OpenApiParameter("order", str, enum=["asc", "desc"]),
]


def _leaderboard_response(request: Request, reference: str | None) -> Response:
    sort = request.query_params.get("sort", "fid_rs")
    order = request.query_params.get("order")
    if order not in {None, "asc", "desc"}:
        raise ApiError(ErrorCode.BAD_REQUEST, "order must be asc or desc")
    try:
        rows = selectors.leaderboard(
            reference=reference,
            extractor=request.query_params.get("extractor") or None,
            sort=sort,
            descending=None if order is None else order == "desc",
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
        parameters=[OpenApiParameter("reference", str), *_LEADERBOARD_PARAMETERS],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        return _leaderboard_response(request, request.query_params.get("reference") or None)


class LeaderboardReferenceApi(APIView):
    """The leaderboard of one reference set."""

    @extend_schema(parameters=_LEADERBOARD_PARAMETERS, responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, reference: str) -> Response:
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

    @extend_schema(responses=ReferenceSetSerializer(many=True))
    def get(self, request: Request) -> Response:
        data = ReferenceSetSerializer(selectors.reference_set_list(), many=True).data
        return Response({"results": data})


class EvaluationRequestSerializer(serializers.Serializer[Any]):
    reference = serializers.SlugField()
    extractor = serializers.ChoiceField(choices=list(EXTRACTOR_IDS), default="medical-cnn")
    num_samples = serializers.IntegerField(min_value=10, max_value=100_000, default=1000)
    seed = serializers.IntegerField(default=0)
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


class ReleaseEvaluationsApi(APIView):
    """Evaluations of one release; staff queue new ones (202)."""

    def get_permissions(self) -> list[Any]:
        return [IsAdminUser()] if self.request.method == "POST" else []

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, namespace: str, name: str, version: str) -> Response:
        release = registry_selectors.release_get_visible(
            namespace=namespace, name=name, version=version, user=request.user
        )
        if release is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"no release {namespace}/{name}@{version}")
        evaluations = release.evaluations.select_related("reference_set").order_by("-created_at")
        return Response({"results": [_evaluation_status(item) for item in evaluations]})

    @extend_schema(request=EvaluationRequestSerializer, responses={202: OpenApiTypes.OBJECT})
    def post(self, request: Request, namespace: str, name: str, version: str) -> Response:
        release = registry_selectors.release_get_visible(
            namespace=namespace, name=name, version=version, user=request.user
        )
        if release is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"no release {namespace}/{name}@{version}")
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
