"""Template filters that link catalogue ids to the hub's pages."""

from __future__ import annotations

from django import template
from django.urls import reverse

register = template.Library()


@register.filter
def model_page_url(model_id: str, version: str | None = None) -> str:
    """The page of ``namespace/name`` (at ``version`` when given)."""
    namespace, _, name = str(model_id).partition("/")
    if version:
        return reverse(
            "model-version-page",
            kwargs={"namespace": namespace, "name": name, "version": str(version)},
        )
    return reverse("model-page", kwargs={"namespace": namespace, "name": name})
