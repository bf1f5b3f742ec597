"""Admin of evaluations: reference sets (read-only) and evaluation runs, with a re-run action."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from evaluation.options import PreprocessOptions
from hub.access import release_visible_to, request_viewer
from hub.evaluations import selectors, services
from hub.evaluations.models import Evaluation, ReferenceSet
from medigan_catalog.errors import CatalogError


@admin.register(ReferenceSet)
class ReferenceSetAdmin(admin.ModelAdmin[ReferenceSet]):
    list_display = ["slug", "modality", "split", "image_count", "licence"]
    readonly_fields = [field.name for field in ReferenceSet._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Reference sets come from `manage.py reference_sets_load`, with their manifest.
        return False


@admin.register(Evaluation)
class EvaluationAdmin(admin.ModelAdmin[Evaluation]):
    list_display = [
        "release",
        "reference_set",
        "extractor_id",
        "status",
        "fid_rs",
        "fid_rr_mean",
        "r_fid",
        "kid_mean",
        "num_samples",
        "run_seconds",
        "finished_at",
    ]
    list_filter = ["status", "extractor_id", "reference_set"]
    readonly_fields = [field.name for field in Evaluation._meta.fields] + ["phase_timings"]
    actions = ["run_again"]

    @admin.display(description="run (s)")
    def run_seconds(self, evaluation: Evaluation) -> str:
        timings = selectors.evaluation_timings(evaluation) or {}
        total = timings.get("total_s")
        return "" if total is None else f"{total:.1f}"

    @admin.display(description="time per phase")
    def phase_timings(self, evaluation: Evaluation) -> SafeString:
        """Each phase's seconds and share of the run, so a slow evaluation shows why."""
        timings = selectors.evaluation_timings(evaluation)
        if not timings:
            return format_html("{}", "not recorded")
        total = timings.get("total_s") or sum(timings.values()) or 1.0
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (name, f"{seconds:.2f}", f"{100 * seconds / total:.0f} %")
                for name, seconds in timings.items()
            ),
        )
        return format_html("<table><tr><th>phase</th><th>s</th><th>share</th></tr>{}</table>", rows)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Queue the selected failed evaluations again")
    def run_again(self, request: HttpRequest, queryset: QuerySet[Evaluation]) -> None:
        requeued = 0
        for evaluation in queryset.filter(status=Evaluation.Status.FAILED):
            try:
                services.evaluation_request(
                    release=evaluation.release,
                    reference_set=evaluation.reference_set,
                    extractor_id=evaluation.extractor_id,
                    num_samples=evaluation.num_samples,
                    seed=evaluation.seed,
                    preprocess=PreprocessOptions.from_dict(evaluation.preprocess),
                    requested_by=request.user if request.user.is_authenticated else None,
                )
            except CatalogError as error:
                # Only published releases are evaluated; say which ones were not queued.
                messages.error(request, error.message)
                continue
            requeued += 1
        messages.success(request, f"{requeued} evaluation(s) queued again.")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Evaluation]:
        queryset: QuerySet[Evaluation] = super().get_queryset(request)
        # Only evaluations of releases the signed-in user may see (hub.access).
        return queryset.filter(
            release_visible_to(request_viewer(request), via="release__")
        ).select_related("release__generative_model", "reference_set")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_staff)
