"""Admin of accounts: tokens (list, revoke; keys never shown after creation), organisations with
their members, and namespaces."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from hub.accounts.models import ApiToken, Namespace, Organisation, OrganisationMember
from hub.accounts.services import api_token_revoke, namespace_check_free
from medigan_catalog.errors import CatalogError


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    list_display = [
        "name",
        "user",
        "key_prefix",
        "scopes",
        "namespace",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["name", "user__username", "key_prefix"]
    readonly_fields = [
        "user",
        "key_prefix",
        "key_sha256",
        "scopes",
        "namespace",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset.filter(revoked_at__isnull=True):
            api_token_revoke(token=token)
        messages.success(request, "Tokens revoked.")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A key is shown only once: tokens are made by their users (API, CLI) or by operators
        # with `manage.py token_create`.
        return False


class OrganisationMemberInline(admin.TabularInline[OrganisationMember, Organisation]):
    model = OrganisationMember
    extra = 0
    autocomplete_fields = ["user"]


class OrganisationForm(forms.ModelForm[Organisation]):
    class Meta:
        model = Organisation
        fields = ["name", "title"]

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"])
        if not self.instance.created_at:  # a new organisation: its namespace must be free
            try:
                namespace_check_free(name)
            except CatalogError as error:
                raise forms.ValidationError(error.message) from error
        return name


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin[Organisation]):
    """Operators create organisations here too; the namespace of the same name comes with it."""

    form = OrganisationForm
    list_display = ["name", "title", "created_at"]
    search_fields = ["name", "title"]
    inlines = [OrganisationMemberInline]

    def save_model(self, request: HttpRequest, obj: Organisation, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            Namespace.objects.get_or_create(name=obj.name, defaults={"organisation": obj})

    def get_readonly_fields(
        self, request: HttpRequest, obj: Organisation | None = None
    ) -> list[str]:
        # The name is the namespace of the organisation's models: fixed once they exist.
        return ["name", "created_at"] if obj is not None else ["created_at"]


@admin.register(Namespace)
class NamespaceAdmin(admin.ModelAdmin[Namespace]):
    list_display = [
        "name",
        "user",
        "organisation",
        "mirrored_from",
        "tracks_upstream",
        "created_at",
    ]
    search_fields = ["name", "user__username", "organisation__name"]
    autocomplete_fields = ["user"]

    def get_readonly_fields(self, request: HttpRequest, obj: Namespace | None = None) -> list[str]:
        return ["name", "user", "organisation", "created_at"] if obj is not None else ["created_at"]
