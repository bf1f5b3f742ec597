"""Admin of DOI pinning: each release's pin with its files and its audit trail, read-only.

Broken pins are one filter away (``status``); two actions act on the selected pins: queue a
failed pin again, and re-check pinned records now.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from hub.pinning import services
from hub.pinning.models import DoiPin, PinEvent, PinnedFile
from hub.pinning.tasks import pin_recheck_task
from medigan_catalog.errors import CatalogError

_FILE_FIELDS: Any = ["key", "size", "md5", "sha256", "content_url", "artifact"]
_EVENT_FIELDS: Any = ["created_at", "kind", "note"]


class PinnedFileInline(admin.TabularInline[PinnedFile, DoiPin]):
    model = PinnedFile
    extra = 0
    fields = _FILE_FIELDS
    readonly_fields = _FILE_FIELDS

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PinEventInline(admin.TabularInline[PinEvent, DoiPin]):
    model = PinEvent
    extra = 0
    fields = _EVENT_FIELDS
    readonly_fields = _EVENT_FIELDS
    ordering = ["id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DoiPin)
class DoiPinAdmin(admin.ModelAdmin[DoiPin]):
    list_display = ["release", "kind", "status", "doi", "checked_at", "attempts"]
    list_filter = ["status", "kind"]
    search_fields = [
        "doi",
        "requested_doi",
        "release__generative_model__namespace",
        "release__generative_model__name",
    ]
    readonly_fields = [
        "release",
        "kind",
        "status",
        "zenodo_url",
        "requested_doi",
        "doi",
        "concept_doi",
        "record_id",
        "record_url",
        "deposition_id",
        "bucket_url",
        "attempts",
        "last_error",
        "running_since",
        "created_at",
        "pinned_at",
        "checked_at",
    ]
    inlines = [PinnedFileInline, PinEventInline]
    actions = ["pin_again", "recheck_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Queue the pin of the selected (failed) approved releases again")
    def pin_again(self, request: HttpRequest, queryset: QuerySet[DoiPin]) -> None:
        for pin in queryset.filter(status=DoiPin.Status.FAILED):
            try:
                services.pin_retry(release_id=pin.release_id)
            except CatalogError as error:
                messages.error(request, error.message)
        messages.success(request, "Pins queued again.")

    @admin.action(description="Re-check the selected pinned records on Zenodo now")
    def recheck_now(self, request: HttpRequest, queryset: QuerySet[DoiPin]) -> None:
        for pin in queryset.filter(status__in=[DoiPin.Status.PINNED, DoiPin.Status.BROKEN]):
            pin_recheck_task.delay(pin.pk)
        messages.success(request, "Re-checks queued.")
