"""GitHub records: a model's link to a repository, the webhook deliveries, the submissions made
from GitHub releases and the commit statuses posted back.

A :class:`GithubLink` is made by one of the model's maintainers (``services.github_link_create``)
and holds the webhook's secret encrypted (``hub.github.webhooks``): it is shown once, never stored
or shown in clear. Every verified delivery is a :class:`GithubDelivery`, unique per link and
GitHub's delivery id, which is how a replay is recognised. A :class:`GithubSubmission` is one
fetch of a release's package asset and its submission to the registry, from a webhook or asked
for on demand; :class:`GithubCommitStatus` rows are the statuses the hub posted (or tried to) to
the tagged commit.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from hub.registry.models import Release
from medigan_catalog.github import DEFAULT_ASSET_NAME


class GithubLink(models.Model):
    """A model (``namespace/name``, which may not exist before its first release) linked to a
    GitHub repository ``owner/repo``; the submissions it makes are the linking maintainer's."""

    namespace = models.CharField(max_length=64)
    name = models.CharField(max_length=128)
    repository = models.CharField(max_length=140)
    asset_name = models.CharField(max_length=255, default=DEFAULT_ASSET_NAME)
    # The webhook secret, Fernet-encrypted: the hub needs the secret itself to verify HMACs, so
    # it cannot keep a hash, but a database dump or the admin never shows it.
    secret_encrypted = models.TextField()
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_delivery_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["namespace", "name"], name="github_link_one_per_model")
        ]
        indexes = [models.Index(fields=["repository"], name="github_link_repository")]

    def __str__(self) -> str:
        return f"{self.model_id} <- {self.repository}"

    @property
    def model_id(self) -> str:
        return f"{self.namespace}/{self.name}"


class GithubDelivery(models.Model):
    """One webhook delivery whose signature verified, and what the hub made of it."""

    class Outcome(models.TextChoices):
        PONG = "pong", "ping answered"
        QUEUED = "queued", "release queued for fetching"
        IGNORED = "ignored", "not an event the hub acts on"
        REFUSED = "refused", "refused (error_code says why)"

    link = models.ForeignKey(GithubLink, on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.CharField(max_length=100)
    event = models.CharField(max_length=64)
    action = models.CharField(max_length=64, blank=True, default="")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error_code = models.CharField(max_length=64, blank=True, default="")
    message = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["link", "delivery_id"], name="github_delivery_once_per_link"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.delivery_id} ({self.outcome})"


class GithubSubmission(models.Model):
    """Fetching one GitHub release's package asset and submitting it as a hub release."""

    class State(models.TextChoices):
        QUEUED = "queued", "queued"
        SUBMITTED = "submitted", "submitted"
        FAILED = "failed", "failed"

    link = models.ForeignKey(GithubLink, on_delete=models.CASCADE, related_name="submissions")
    # The webhook delivery that asked for it; none when a maintainer asked on demand.
    delivery = models.OneToOneField(
        GithubDelivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="submission"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    tag = models.CharField(max_length=255)
    version = models.CharField(max_length=64)
    commit_sha = models.CharField(max_length=64, blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=64, blank=True, default="")
    message = models.TextField(blank=True, default="")
    release = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.link.repository}@{self.tag} ({self.state})"

    @property
    def origin(self) -> str:
        return "request" if self.delivery_id is None else "webhook"


class GithubCommitStatus(models.Model):
    """A commit status the hub posted to a submission's tagged commit (or failed to post)."""

    submission = models.ForeignKey(
        GithubSubmission, on_delete=models.CASCADE, related_name="statuses"
    )
    sha = models.CharField(max_length=64)
    state = models.CharField(max_length=16)
    description = models.CharField(max_length=140)
    target_url = models.CharField(max_length=500)
    # The hub release's state the status reports ("" for a submission that failed before one).
    release_state = models.CharField(max_length=16, blank=True, default="")
    posted = models.BooleanField(default=False)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.state} on {self.sha[:12]}"
