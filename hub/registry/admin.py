"""Review in the Django admin: releases with their sample grid, checks, card and audit trail.

A release's page reads in the order a reviewer works: the sample grid, the validation checks,
the card as text (its JSON collapsed below it), then the release's records. A failed check shows
the contributor's message and, collapsed, the full traceback behind it, which only staff (the
admin's users) ever see. A release in review links to its review page (``hub.web.review``).

Approve and reject are admin actions that ask for a note, and deprecate, yank and withdraw are
admin actions that ask for a reason (and for deprecation, a replacement model); all go through the
lifecycle services, so the admin cannot change a state any other way, nor skip who may. The
admin's index links the review queue with the number of releases waiting for the signed-in
reviewer.
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
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import lazy
from django.utils.html import format_html, format_html_join
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
# The stock index with the review queue on top (admin/hub_index.html extends admin/index.html):
# a template of its own name, since django.contrib.admin's templates come first in the search.
admin.site.index_template = "admin/hub_index.html"

# How a message says that a decision was applied.
_RELEASE_DECIDED = {"approve": "approved and published", "reject": "rejected"}
_REQUEST_DECIDED = {"approve": "approved", "reject": "rejected"}
_LIFECYCLE_DONE = {"deprecate": "deprecated", "yank": "yanked", "withdraw": "withdrawn"}


def _reviewer(request: HttpRequest) -> User:
    assert isinstance(request.user, User), "the admin only serves signed-in users"
    return request.user


class ReviewNoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 80}), required=False)


class LifecycleReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 4, "cols": 80}))
    replacement = forms.CharField(
        required=False,
        max_length=300,
        help_text="deprecate only: the model (namespace/name) users should take instead",
    )


class _ReadOnlyInline(admin.TabularInline[Any, Release]):
    """An inline that shows records of a release but never adds, edits or deletes them."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _traceback(check: ReleaseCheck) -> SafeString | str:
    # The message sums the failure up for the contributor; this is all of it, collapsed so that
    # the checks stay readable.
    if not check.detail:
        return "-"
    return format_html(
        '<details><summary>full traceback</summary><pre class="review-traceback">{}</pre>'
        "</details>",
        check.detail,
    )


class ReleaseEventInline(_ReadOnlyInline):
    model = ReleaseEvent
    fields = readonly_fields = ("created_at", "actor", "from_state", "to_state", "note")


class ArtifactInline(_ReadOnlyInline):
    model = Artifact
    fields = readonly_fields = ("role", "filename", "sha256", "size", "external_urls")


_RELEASE_FIELDS = (
    "generative_model",
    "version",
    "state",
    "submitted_by",
    "created_at",
    "published_at",
    "doi",
    "pinned",
    "pin_broken",
    "pin_note",
    "lifecycle_reason",
    "replacement_model_id",
    "lifecycle_at",
)
_ORIGIN_FIELDS = ("origin_hub", "origin_url", "origin_release_id", "origin_serial", "origin_sha256")


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin[Release]):
    # The grid's size and pixelated scaling live in a style sheet: the Content-Security-Policy
    # allows no style attribute.
    class Media:
        css = {"all": ["web/admin.css"]}

    list_display = ["release_id", "state", "submitted_by", "created_at", "published_at", "pinned"]
    list_filter = ["state", "generative_model__namespace", "pinned"]
    search_fields = ["generative_model__namespace", "generative_model__name", "version"]
    # What a reviewer looks at first comes first: the grid, the checks, the card as text. The
    # JSON card runs to thousands of pixels, so it is collapsed; the checks are a table of their
    # own here (not an inline), because inlines always follow every fieldset.
    fieldsets = [
        ("Sample grid", {"fields": ["grid_preview"]}),
        ("Validation checks", {"fields": ["checks_table"]}),
        ("Card", {"fields": ["card_text"]}),
        ("Card as JSON", {"fields": ["card_pretty"], "classes": ["collapse"]}),
        ("Release", {"fields": _RELEASE_FIELDS}),
        ("Origin (mirrored releases)", {"fields": _ORIGIN_FIELDS, "classes": ["collapse"]}),
    ]
    # Every field is read-only: states change only through the review services.
    readonly_fields = [
        "grid_preview",
        "checks_table",
        "card_text",
        "card_pretty",
        *_RELEASE_FIELDS,
        *_ORIGIN_FIELDS,
    ]
    inlines = [ArtifactInline, ReleaseEventInline]
    actions = ["approve", "reject", "deprecate", "yank", "withdraw"]

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
            '<img class="review-grid-large" src="{}" alt="sample grid of {}">',
            path,
            release.release_id,
        )

    @admin.display(description="checks")
    def checks_table(self, release: Release) -> SafeString | str:
        checks = list(release.checks.order_by("id"))
        if not checks:
            return "no checks ran on this hub"
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td class="status-{}">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    check.name,
                    check.status,
                    check.status,
                    check.message,
                    _traceback(check),
                    f"{check.duration_seconds:.1f} s",
                )
                for check in checks
            ),
        )
        return format_html(
            '<table class="review-checks"><thead><tr><th>check</th><th>result</th>'
            "<th>message</th><th>traceback (staff only)</th><th>duration</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="card")
    def card_text(self, release: Release) -> SafeString | str:
        # The template escapes every field of the card.
        try:
            card = selectors.release_card(release)
        except CatalogError as error:
            return f"the stored card does not read as a card: {error.message}"
        return render_to_string("web/review_card.html", {"card": card})

    @admin.display(description="card (JSON)")
    def card_pretty(self, release: Release) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(release.card, indent=2))

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Release | None = None,
    ) -> HttpResponse:
        # A release in review links to its review page, where the decision is taken with a note.
        if (
            obj is not None
            and obj.state == ReleaseState.IN_REVIEW
            and self.has_review_permission(request)
        ):
            model = obj.generative_model
            context["review_url"] = reverse(
                "review-release",
                kwargs={"namespace": model.namespace, "name": model.name, "version": obj.version},
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Release]:
        # The admin shows staff what they may see, by the same rule as the API (hub.access).
        queryset: QuerySet[Release] = super().get_queryset(request)
        return queryset.filter(release_visible_to(request_viewer(request))).select_related(
            "generative_model"
        )

    def has_review_permission(self, request: HttpRequest) -> bool:
        # Staff who may review some release; services.release_review decides for each.
        return selectors.viewer_reviews_anything(request_viewer(request))

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
                        messages.success(
                            request, f"{release.release_id}: {_RELEASE_DECIDED[decision]}"
                        )
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

    def has_lifecycle_permission(self, request: HttpRequest) -> bool:
        # Any staff member may ask; the services decide for each release who may do what.
        return bool(request.user.is_staff)

    def _lifecycle(
        self, request: HttpRequest, queryset: QuerySet[Release], action: str
    ) -> HttpResponse | None:
        form = LifecycleReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            viewer, actor = request_viewer(request), _reviewer(request)
            for release in queryset:
                try:
                    services.release_lifecycle_act(
                        action=action,
                        release_id=release.pk,
                        viewer=viewer,
                        actor=actor,
                        reason=form.cleaned_data["reason"],
                        replacement_model_id=form.cleaned_data["replacement"],
                    )
                except CatalogError as error:
                    messages.error(request, f"{release.release_id}: {error.message}")
                else:
                    messages.success(request, f"{release.release_id}: {_LIFECYCLE_DONE[action]}")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"{action.capitalize()} releases",
            "action_name": action,
            "releases": queryset,
            "form": form,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/registry/release/lifecycle.html", context)

    @admin.action(
        description="Deprecate the selected releases (with a reason and a replacement)",
        permissions=["lifecycle"],
    )
    def deprecate(self, request: HttpRequest, queryset: QuerySet[Release]) -> HttpResponse | None:
        return self._lifecycle(request, queryset, "deprecate")

    @admin.action(
        description="Yank the selected releases (downloadable by exact version, never chosen)",
        permissions=["lifecycle"],
    )
    def yank(self, request: HttpRequest, queryset: QuerySet[Release]) -> HttpResponse | None:
        return self._lifecycle(request, queryset, "yank")

    @admin.action(
        description="Withdraw the selected releases (with a reason; after publication: admins)",
        permissions=["lifecycle"],
    )
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Release]) -> HttpResponse | None:
        return self._lifecycle(request, queryset, "withdraw")


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
                    note=f"{_REQUEST_DECIDED[decision]} in the admin",
                )
            except CatalogError as error:
                messages.error(request, f"{model.model_id}: {error.message}")
            else:
                messages.success(request, f"{model.model_id}: request {_REQUEST_DECIDED[decision]}")

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
