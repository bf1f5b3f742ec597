"""Admin of federation: upstreams with their lag, last success and last error, and their events.

The token is write-only here: the form takes a new one and never shows the stored one.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from hub.federation import services
from hub.federation.models import MirroredRelease, Upstream, UpstreamEvent
from hub.federation.tasks import upstream_sync_task


class UpstreamForm(forms.ModelForm[Upstream]):
    token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="a read token on the upstream; leave empty to keep the stored one",
    )

    class Meta:
        model = Upstream
        fields = [
            "name",
            "url",
            "token",
            "pinned_keys",
            "namespaces",
            "modalities",
            "licences",
            "model_ids",
            "mode",
            "policy",
            "revalidate",
            "interval_seconds",
            "enabled",
        ]

    def clean_token(self) -> str:
        token = str(self.cleaned_data.get("token") or "")
        return token or (self.instance.token if self.instance.pk else "")


_EVENT_FIELDS: Any = ["created_at", "kind", "serial", "message"]


class UpstreamEventInline(admin.TabularInline[UpstreamEvent, Upstream]):
    model = UpstreamEvent
    extra = 0
    fields = _EVENT_FIELDS
    readonly_fields = _EVENT_FIELDS
    ordering = ["-id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Upstream)
class UpstreamAdmin(admin.ModelAdmin[Upstream]):
    form = UpstreamForm
    list_display = [
        "name",
        "url",
        "mode",
        "policy",
        "serial",
        "latest_serial",
        "lag",
        "last_success_at",
        "last_error_at",
        "failures",
        "enabled",
    ]
    readonly_fields = [
        "hub_name",
        "public_keys",
        "serial",
        "latest_serial",
        "scope",
        "last_attempt_at",
        "last_success_at",
        "last_error",
        "last_error_at",
        "failures",
        "next_attempt_at",
    ]
    inlines = [UpstreamEventInline]
    actions = ["sync_now", "keys_forget"]

    @admin.display(description="serials behind")
    def lag(self, upstream: Upstream) -> int:
        return upstream.lag

    @admin.action(description="Sync the selected upstreams now")
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Upstream]) -> None:
        for upstream in queryset:
            upstream_sync_task.delay(upstream.pk)
        messages.success(request, "Sync queued.")

    @admin.action(
        description="Forget the stored keys (the next sync pins the key set again, checked "
        "against the pinned key ids when there are any)"
    )
    def keys_forget(self, request: HttpRequest, queryset: QuerySet[Upstream]) -> None:
        for upstream in queryset:
            services.upstream_keys_forget(upstream_id=upstream.pk, actor=str(request.user))
        messages.success(request, "Stored keys forgotten.")


@admin.register(MirroredRelease)
class MirroredReleaseAdmin(admin.ModelAdmin[MirroredRelease]):
    list_display = ["release", "upstream", "created_at"]
    list_filter = ["upstream"]
    readonly_fields = ["release", "upstream", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
