"""Federation records: the upstream hubs this hub mirrors, their sync state, what came from each.

An :class:`Upstream` is configured by an operator (the admin, or ``manage.py upstream_add``):
where it is, the token this hub reads it with, the keys it must be signed with, which releases to
take (filters), whether artifacts are copied eagerly (``full``) or on first download
(``metadata``), and whether mirrored releases are published directly or wait for local review.
Its sync state (the upstream serial applied, the last success and error, the backoff) is written
by ``services.upstream_sync`` only.
"""

from __future__ import annotations

from django.db import models

from hub.registry.models import Release


class Upstream(models.Model):
    """Another hub this hub mirrors, its filters and policy, and how far its sync got."""

    class Mode(models.TextChoices):
        METADATA = "metadata", "metadata: artifacts fetched on first download"
        FULL = "full", "full: artifacts copied eagerly"

    class Policy(models.TextChoices):
        PUBLISH = "publish", "publish mirrored releases directly"
        REVIEW = "review", "land mirrored releases in review for local reviewers"

    name = models.SlugField(max_length=64, unique=True)
    url = models.CharField(max_length=500)
    # A read token on the upstream, sent to it only; empty reads its public catalogue.
    token = models.CharField(max_length=200, blank=True, default="")
    # Key ids the upstream must sign with (an operator's pin); empty pins the upstream's key set
    # on first sync. ``public_keys`` holds the keys themselves: key id -> raw key, base64.
    pinned_keys = models.JSONField(default=list, blank=True)
    public_keys = models.JSONField(default=dict, blank=True)
    # The upstream's own name (its MEDIGAN_HUB_NAME, from its key set): attestations name it.
    hub_name = models.CharField(max_length=64, blank=True, default="")
    # Filters; an empty list takes everything.
    namespaces = models.JSONField(default=list, blank=True)
    modalities = models.JSONField(default=list, blank=True)
    licences = models.JSONField(default=list, blank=True)
    model_ids = models.JSONField(default=list, blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.METADATA)
    policy = models.CharField(max_length=16, choices=Policy.choices, default=Policy.PUBLISH)
    # Run this hub's own validation on each mirrored package before it is published or reviewed.
    revalidate = models.BooleanField(default=False)
    interval_seconds = models.PositiveIntegerField(default=300)
    enabled = models.BooleanField(default=True)
    # Sync state.
    serial = models.BigIntegerField(default=0)
    scope = models.CharField(max_length=200, blank=True, default="")
    latest_serial = models.BigIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_error_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"

    @property
    def lag(self) -> int:
        """Serials of the upstream not applied here yet, as of the last answer it gave."""
        return max(0, self.latest_serial - self.serial)


class MirroredRelease(models.Model):
    """A release of this hub that is a copy of an upstream's."""

    upstream = models.ForeignKey(Upstream, on_delete=models.PROTECT, related_name="releases")
    release = models.OneToOneField(Release, on_delete=models.CASCADE, related_name="mirror")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.release} from {self.upstream.name}"


class UpstreamEvent(models.Model):
    """An audit record of a sync: a failure, a refused entry (a clash, a bad attestation), a
    key learned or rotated, a bundle imported. Never edited."""

    upstream = models.ForeignKey(Upstream, on_delete=models.CASCADE, related_name="events")
    # sync_failed, entry_refused, key_pinned, key_rotated, keys_forgotten, bundle_imported
    kind = models.CharField(max_length=32)
    message = models.TextField()
    serial = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.upstream.name}: {self.kind}"
