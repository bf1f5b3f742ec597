"""Review in the Django admin: releases with their checks, sample grid, card and audit trail.

A failed check shows the contributor's message and, collapsed, the full traceback behind it,
which only staff (the admin's users) ever see.

Approve and reject are admin actions that ask for a note and go through the lifecycle services,
so the admin cannot change a state any other way.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.functional import lazy
from django.utils.html import format_html
from django.utils.safestring import SafeString

from hub import sandbox
from hub.access import (
    model_visible_or_pending_q,
    release_visible_to,
    request_viewer,
)
from hub.accounts.selectors import user_is_reviewer
from hub.registry import selectors, services
from hub.registry.models import (
    Artifact,
    GenerativeModel,
    ModelEvent,
    Release,
    ReleaseCheck,
    ReleaseEvent,
)
from medigan_catalog.errors import CatalogError
from medigan_catalog.lifecycle import ReleaseState


def _site_header() -> str:
    """The admin header: it says plainly when contributed code is not, or cannot be, isolated."""
    if not sandbox.sandbox_isolated():
        return f"medigan hub — WARNING: {sandbox.UNISOLATED_WARNING}"
    status = sandbox.sandbox_status()
    if not status.available:
        return (
            "medigan hub — WARNING: the sandbox cannot start, so no contributed code runs and "
            f"every validation fails: {status.detail}"
        )
    return "medigan hub"


# Evaluated at each rendering, so the header follows the sandbox's state, not the import's.
admin.site.site_header = lazy(_site_header, str)()


def _reviewer(request: HttpRequest) -> User:
    assert isinstance(request.user, User), "the admin only serves signed-in users"
    return request.user


class ReviewNoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 80}), required=False)


class _ReadOnlyInline(admin.TabularInline[Any, Release]):
    """An inline that shows records of a release but never adds, edits or deletes them."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReleaseCheckInline(_ReadOnlyInline):
    model = ReleaseCheck
    fields = readonly_fields = ("name", "status", "message", "traceback", "duration_seconds")

    @admin.display(description="traceback (staff only)")
    def traceback(self, check: ReleaseCheck) -> SafeString | str:
        # The message sums the failure up for the contributor; this is all of it, collapsed so
        # that the checks stay readable.
        if not check.detail:
            return "-"
        return format_html(
            "<details><summary>full traceback</summary>"
            '<pre style="white-space: pre-wrap">{}</pre></details>',
            check.detail,
        )


class ReleaseEventInline(_ReadOnlyInline):
    model = ReleaseEvent
    fields = readonly_fields = ("created_at", "actor", "from_state", "to_state", "note")


class ArtifactInline(_ReadOnlyInline):
    model = Artifact
    fields = readonly_fields = ("role", "filename", "sha256", "size", "external_urls")


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin[Release]):
    list_display = ["release_id", "state", "submitted_by", "created_at", "published_at", "pinned"]
    list_filter = ["state", "generative_model__namespace", "pinned"]
    search_fields = ["generative_model__namespace", "generative_model__name", "version"]
    readonly_fields = [
        "generative_model",
        "version",
        "state",
        "submitted_by",
        "created_at",
        "published_at",
        "doi",
        "pinned",
        "origin_hub",
        "origin_url",
        "origin_release_id",
        "origin_serial",
        "origin_sha256",
        "grid_preview",
        "card_pretty",
    ]
    exclude = ["card", "sample_grid", "attestation"]
    inlines = [ReleaseCheckInline, ArtifactInline, ReleaseEventInline]
    actions = ["approve", "reject"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Releases arrive by push (API or client), never typed into the admin.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="sample grid")
    def grid_preview(self, release: Release) -> SafeString | str:
        # The access-checked API view, not the storage URL: the reviewer's session passes it, the
        # public does not.
        path = selectors.release_sample_grid_path(release)
        if path is None:
            return "-"
        return format_html(
            '<img src="{}" alt="sample grid of {}" style="image-rendering: pixelated; '
            'width: 512px">',
            path,
            release.release_id,
        )

    @admin.display(description="card")
    def card_pretty(self, release: Release) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(release.card, indent=2))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Release]:
        # The admin shows staff what they may see, by the same rule as the API (hub.access).
        queryset: QuerySet[Release] = super().get_queryset(request)
        return queryset.filter(release_visible_to(request_viewer(request))).select_related(
            "generative_model"
        )

    def has_review_permission(self, request: HttpRequest) -> bool:
        # Staff who may review some release; services.release_review decides for each.
        return user_is_reviewer(request.user) or bool(request_viewer(request).org_roles)

    def _review(
        self, request: HttpRequest, queryset: QuerySet[Release], decision: str
    ) -> HttpResponse | None:
        if "apply" in request.POST:
            form = ReviewNoteForm(request.POST)
            if form.is_valid():
                for release in queryset:
                    try:
                        services.release_review(
                            release_id=release.pk,
                            reviewer=_reviewer(request),
                            decision=decision,
                            note=form.cleaned_data["note"],
                        )
                    except CatalogError as error:
                        messages.error(request, f"{release.release_id}: {error.message}")
                    else:
                        messages.success(request, f"{release.release_id}: {decision}d")
                return None
        else:
            form = ReviewNoteForm()
        context = {
            **self.admin_site.each_context(request),
            "title": f"{decision.capitalize()} releases",
            "decision": decision,
            "releases": queryset,
            "release_grids": [
                (release, selectors.release_sample_grid_path(release)) for release in queryset
            ],
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
            "in_review": ReleaseState.IN_REVIEW.value,
        }
        return TemplateResponse(request, "admin/registry/release/review.html", context)

    @admin.action(
        description="Approve and publish the selected releases (with a note)",
        permissions=["review"],
    )
    def approve(self, request: HttpRequest, queryset: QuerySet[Release]) -> HttpResponse | None:
        return self._review(request, queryset, "approve")

    @admin.action(description="Reject the selected releases (with a note)", permissions=["review"])
    def reject(self, request: HttpRequest, queryset: QuerySet[Release]) -> HttpResponse | None:
        return self._review(request, queryset, "reject")


class ModelEventInline(admin.TabularInline[ModelEvent, GenerativeModel]):
    model = ModelEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ("created_at", "actor", "kind", "from_value", "to_value", "note")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(GenerativeModel)
class GenerativeModelAdmin(admin.ModelAdmin[GenerativeModel]):
    list_display = ["model_id", "visibility", "requested_visibility", "owner", "created_at"]
    search_fields = ["namespace", "name"]
    list_filter = ["visibility", "namespace"]
    # Visibility changes only through services.model_visibility_* (audited, reviewed); the
    # actions below lead there.
    readonly_fields = [
        "namespace",
        "name",
        "owner",
        "visibility",
        "requested_visibility",
        "requested_by",
        "created_at",
    ]
    inlines = [ModelEventInline]
    actions = ["approve_visibility", "reject_visibility"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[GenerativeModel]:
        queryset: QuerySet[GenerativeModel] = super().get_queryset(request)
        viewer = request_viewer(request)
        return queryset.filter(model_visible_or_pending_q(viewer))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_review_permission(self, request: HttpRequest) -> bool:
        return user_is_reviewer(request.user)

    def _decide(
        self, request: HttpRequest, queryset: QuerySet[GenerativeModel], decision: str
    ) -> None:
        for model in queryset.filter(requested_visibility__gt=""):
            try:
                services.model_visibility_review(
                    model_id=model.pk,
                    viewer=request_viewer(request),
                    reviewer=_reviewer(request),
                    decision=decision,
                    note=f"{decision}d in the admin",
                )
            except CatalogError as error:
                messages.error(request, f"{model.model_id}: {error.message}")
            else:
                messages.success(request, f"{model.model_id}: request {decision}d")

    @admin.action(
        description="Approve the requests to make these models public", permissions=["review"]
    )
    def approve_visibility(self, request: HttpRequest, queryset: QuerySet[GenerativeModel]) -> None:
        self._decide(request, queryset, "approve")

    @admin.action(
        description="Reject the requests to make these models public", permissions=["review"]
    )
    def reject_visibility(self, request: HttpRequest, queryset: QuerySet[GenerativeModel]) -> None:
        self._decide(request, queryset, "reject")
