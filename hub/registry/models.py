"""Registry records: a generative model, its immutable releases, their artifacts, checks and events.

A release's state is written by exactly one service (``services.release_transition``); the state
graph itself is data in ``medigan_catalog.lifecycle``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from medigan_catalog.access import Visibility
from medigan_catalog.lifecycle import ReleaseState

VISIBILITY_CHOICES = [(visibility.value, visibility.value) for visibility in Visibility]


class GenerativeModel(models.Model):
    """A named entry ``namespace/name`` that owns a series of releases, and who may see it.

    ``namespace`` names a ``hub.accounts.Namespace``, whose owner (a user, an organisation or
    the hub) decides who pushes. ``visibility`` is written only by ``services.model_visibility_*``;
    ``requested_visibility`` is a change to ``public`` waiting for a hub reviewer.
    """

    namespace = models.CharField(max_length=64)
    name = models.CharField(max_length=128)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    visibility = models.CharField(
        max_length=16, choices=VISIBILITY_CHOICES, default=Visibility.PUBLIC
    )
    requested_visibility = models.CharField(
        max_length=16, choices=VISIBILITY_CHOICES, blank=True, default=""
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The upstream hub this model is mirrored from ("" for a model pushed here): a mirrored
    # model takes releases from its upstream only, a local one never from an upstream.
    mirrored_from = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["namespace", "name"], name="unique_model_id"),
        ]
        ordering = ["namespace", "name"]

    def __str__(self) -> str:
        return self.model_id

    @property
    def model_id(self) -> str:
        return f"{self.namespace}/{self.name}"


class Release(models.Model):
    """One immutable version of a generative model: its card, artifacts and lifecycle state."""

    STATE_CHOICES = [(state.value, state.value) for state in ReleaseState]

    generative_model = models.ForeignKey(
        GenerativeModel, on_delete=models.PROTECT, related_name="releases"
    )
    version = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=STATE_CHOICES, default=ReleaseState.SUBMITTED)
    card = models.JSONField()
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    doi = models.CharField(max_length=255, blank=True, default="")
    pinned = models.BooleanField(default=False)
    sample_grid = models.FileField(upload_to="grids/", blank=True, default="")
    # The publishing hub's signature over the release's content identity
    # (``medigan_catalog.signing.Attestation``): this hub's, made when it published the release,
    # or the origin's, copied unchanged for a mirrored release.
    attestation = models.JSONField(default=dict, blank=True)
    # Where a mirrored release came from (all empty for a release pushed here): the origin hub's
    # name and URL, the release's id and serial there, and its package sha256 as announced,
    # which the copy here must equal.
    origin_hub = models.CharField(max_length=64, blank=True, default="")
    origin_url = models.CharField(max_length=500, blank=True, default="")
    origin_release_id = models.CharField(max_length=300, blank=True, default="")
    origin_serial = models.BigIntegerField(null=True, blank=True)
    origin_sha256 = models.CharField(max_length=64, blank=True, default="")
    # Why a maintainer deprecated or yanked the release, and the model that replaces it: what
    # the snapshot carries and the client's warning says (docs/lifecycle.md).
    lifecycle_reason = models.TextField(blank=True, default="")
    replacement_model_id = models.CharField(max_length=300, blank=True, default="")
    lifecycle_at = models.DateTimeField(null=True, blank=True)
    # A pinned DOI whose record no longer holds the release's bytes (a re-check found a file
    # changed or gone): the release stays, flagged, and ``pin_note`` says what was found.
    pin_broken = models.BooleanField(default=False)
    # The pusher asked the hub to deposit the release on Zenodo and pin the DOI it gets
    # (``push --mint-doi``); the pin happens between approval and publication.
    doi_mint_requested = models.BooleanField(default=False)
    pin_note = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["generative_model", "version"], name="unique_release_version"
            ),
        ]
        ordering = ["generative_model__namespace", "generative_model__name", "created_at"]

    def __str__(self) -> str:
        return self.release_id

    @property
    def model_id(self) -> str:
        return self.generative_model.model_id

    @property
    def release_id(self) -> str:
        return f"{self.generative_model.model_id}@{self.version}"


class Artifact(models.Model):
    """A file of a release: stored by the hub (``file``) or hosted elsewhere (``external_urls``)."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="artifacts")
    role = models.CharField(max_length=16, default="package")
    filename = models.CharField(max_length=255)
    file = models.FileField(upload_to="releases/", max_length=500, blank=True, default="")
    sha256 = models.CharField(max_length=64, blank=True, default="")
    size = models.BigIntegerField(null=True, blank=True)
    # What the uploader said it sent; the artifact check compares it with what arrived.
    declared_sha256 = models.CharField(max_length=64, blank=True, default="")
    external_urls = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["release", "filename"], name="unique_artifact_name"),
        ]

    def __str__(self) -> str:
        return f"{self.release} {self.filename}"


class ReleaseCheck(models.Model):
    """The outcome of one named validation check on a release.

    ``message`` is the contributor's (shown by the API and the CLI); ``detail`` is staff-only,
    shown in the admin: a failed package's full traceback, which the message sums up.
    """

    class Status(models.TextChoices):
        PASSED = "passed"
        FAILED = "failed"
        SKIPPED = "skipped"

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="checks")
    name = models.CharField(max_length=64)
    status = models.CharField(max_length=8, choices=Status.choices)
    message = models.TextField(blank=True, default="")
    detail = models.TextField(blank=True, default="")
    duration_seconds = models.FloatField(default=0.0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"


class ReleaseEvent(models.Model):
    """An audit record of one state change: who, from, to, why, when. Never edited."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_state = models.CharField(max_length=16, blank=True, default="")
    to_state = models.CharField(max_length=16)
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.release}: {self.from_state or '-'} -> {self.to_state}"


class ModelEvent(models.Model):
    """An audit record of a change to a model's settings (its visibility). Never edited."""

    generative_model = models.ForeignKey(
        GenerativeModel, on_delete=models.CASCADE, related_name="events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # visibility_requested, visibility_changed, visibility_request_rejected
    kind = models.CharField(max_length=32)
    from_value = models.CharField(max_length=16, blank=True, default="")
    to_value = models.CharField(max_length=16, blank=True, default="")
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.generative_model}: {self.kind} {self.from_value or '-'} -> {self.to_value}"


class CatalogSerial(models.Model):
    """The single row that counts changes of the catalogue; each change gets the next value."""

    serial = models.BigIntegerField(default=0)
    changed_at = models.DateTimeField(auto_now=True)


class CatalogChange(models.Model):
    """One change of what some viewers' catalogue holds, at the serial it was given. Append-only.

    ``namespace`` and the model's visibility before and after say whose catalogue it touched,
    so each viewer's serial (``selectors.catalog_scope_state``) is the newest change they may
    see: a change to a private model moves no outsider's serial.
    """

    serial = models.BigIntegerField(unique=True)
    # release_published, release_deprecated, release_withdrawn, evaluation_finished,
    # visibility_changed, baseline
    kind = models.CharField(max_length=32)
    generative_model = models.ForeignKey(
        GenerativeModel, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    release = models.ForeignKey(Release, null=True, on_delete=models.SET_NULL, related_name="+")
    namespace = models.CharField(max_length=64, blank=True, default="")
    visibility_before = models.CharField(max_length=16, choices=VISIBILITY_CHOICES)
    visibility_after = models.CharField(max_length=16, choices=VISIBILITY_CHOICES)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["serial"]

    def __str__(self) -> str:
        return f"{self.serial}: {self.kind} {self.namespace}"
