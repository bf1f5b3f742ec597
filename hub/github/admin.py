"""Admin of GitHub-linked submissions: links, their deliveries, submissions and statuses.

A link's secret is never shown here: the add form makes a link through the service (the new
secret appears once, in the confirmation message), and *rotate the webhook secret* gives a link
a new one the same way. Deliveries, submissions and statuses are records: read-only, except that
a failed submission can be queued again.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest

from hub.access import viewer_for
from hub.github import services
from hub.github.models import GithubCommitStatus, GithubDelivery, GithubLink, GithubSubmission
from medigan_catalog.errors import CatalogError

_LINK_FIELDS: Any = ["namespace", "name", "repository", "asset_name"]
_LINK_RECORD: Any = ["linked_by", "created_at", "updated_at", "last_delivery_at"]
_DELIVERY_FIELDS: Any = [
    "received_at",
    "delivery_id",
    "event",
    "action",
    "outcome",
    "error_code",
    "message",
]
_STATUS_FIELDS: Any = [
    "created_at",
    "state",
    "release_state",
    "description",
    "target_url",
    "posted",
]


class GithubLinkForm(forms.ModelForm[GithubLink]):
    # The admin's user, set by GithubLinkAdmin.get_form: the link is checked as theirs.
    request_user: User | None = None

    class Meta:
        model = GithubLink
        fields = _LINK_FIELDS

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance._state.adding and self.request_user is not None:
            try:
                services.github_link_check(
                    viewer=viewer_for(self.request_user),
                    namespace=str(data.get("namespace", "")),
                    name=str(data.get("name", "")),
                    repository=str(data.get("repository", "")),
                    asset_name=str(data.get("asset_name", "")),
                )
            except CatalogError as error:
                raise forms.ValidationError(error.message) from error
        return data


class GithubDeliveryInline(admin.TabularInline[GithubDelivery, GithubLink]):
    model = GithubDelivery
    extra = 0
    fields = _DELIVERY_FIELDS
    readonly_fields = _DELIVERY_FIELDS
    ordering = ["-id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(GithubLink)
class GithubLinkAdmin(admin.ModelAdmin[GithubLink]):
    form = GithubLinkForm
    list_display = ["model_id", "repository", "asset_name", "linked_by", "last_delivery_at"]
    search_fields = ["namespace", "name", "repository"]
    inlines = [GithubDeliveryInline]
    actions = ["rotate_secret"]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        # The form class is GithubLinkForm (self.form), subclassed by the admin for this request.
        assert issubclass(form, GithubLinkForm)
        form.request_user = request.user if isinstance(request.user, User) else None
        return form

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # An existing link changes through the API (linking again) or the rotate action.
        return [*_LINK_FIELDS, *_LINK_RECORD] if obj is not None else _LINK_RECORD

    def save_model(self, request: HttpRequest, obj: GithubLink, form: Any, change: bool) -> None:
        if change:
            return
        assert isinstance(request.user, User)  # the admin's users are real accounts
        # Checked by the form already; the service checks again as it writes.
        link, secret = services.github_link_create(
            viewer=viewer_for(request.user),
            user=request.user,
            namespace=obj.namespace,
            name=obj.name,
            repository=obj.repository,
            asset_name=obj.asset_name,
        )
        obj.pk = link.pk
        self.message_user(
            request,
            f"linked {link}; the webhook secret, shown this once: {secret}",
            messages.WARNING,
        )

    @admin.action(description="Rotate the webhook secret (shown once)")
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[GithubLink]) -> None:
        for link in queryset:
            secret = services.github_link_secret_rotate(link_id=link.pk)
            self.message_user(
                request, f"{link}: new webhook secret, shown this once: {secret}", messages.WARNING
            )


class GithubCommitStatusInline(admin.TabularInline[GithubCommitStatus, GithubSubmission]):
    model = GithubCommitStatus
    extra = 0
    fields = _STATUS_FIELDS
    readonly_fields = [*_STATUS_FIELDS, "error"]
    ordering = ["id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(GithubSubmission)
class GithubSubmissionAdmin(admin.ModelAdmin[GithubSubmission]):
    list_display = [
        "__str__",
        "version",
        "state",
        "attempts",
        "error_code",
        "release",
        "created_at",
    ]
    list_filter = ["state", "error_code"]
    search_fields = ["link__repository", "tag", "link__namespace", "link__name"]
    readonly_fields = [
        "link",
        "delivery",
        "requested_by",
        "tag",
        "version",
        "commit_sha",
        "state",
        "attempts",
        "error_code",
        "message",
        "release",
        "created_at",
        "updated_at",
    ]
    inlines = [GithubCommitStatusInline]
    actions = ["retry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Queue the failed submissions again")
    def retry(self, request: HttpRequest, queryset: QuerySet[GithubSubmission]) -> None:
        queued = sum(
            services.github_submission_retry(submission_id=submission.pk) for submission in queryset
        )
        self.message_user(request, f"{queued} submission(s) queued again")
