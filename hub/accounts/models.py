"""Account records: API tokens (stored as hashes, never in clear)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

REVIEWER_GROUP_NAME = "reviewers"


class ApiToken(models.Model):
    """A bearer token that lets a user push releases and call the API from scripts.

    Only the sha256 of the key is stored, so a leaked database does not leak usable tokens; the
    first characters are kept to tell tokens apart in the admin.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    key_prefix = models.CharField(max_length=12)
    key_sha256 = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"
