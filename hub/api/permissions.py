"""API permissions: who may push and who may review."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from hub.accounts.selectors import user_is_reviewer


class IsReviewer(BasePermission):
    """Only members of the reviewer group (and superusers) may approve or reject."""

    message = "only reviewers may review releases"

    def has_permission(self, request: Request, view: Any) -> bool:
        return user_is_reviewer(request.user)
