"""Pinning records: the Zenodo record that holds a release's bytes, its files and its audit trail.

A release's own ``doi``, ``pinned``, ``pin_broken`` and ``pin_note`` (registry) are what clients
see; the rows here are how the hub got there and what it keeps checking: which Zenodo instance,
record and deposition, the files with Zenodo's md5 and the hub's sha256, and every step.
"""

from __future__ import annotations

from django.db import models


class DoiPin(models.Model):
    """The pin of one release: minted by the hub, provided by its contributor, or imported.

    ``status`` walks ``pending`` (a pin task owns it) to ``pinned``, or to ``failed`` (the
    release stays approved and unpublished; ``last_error`` says why). A pinned record that a
    re-check finds changed or gone is ``broken`` until a re-check finds it whole again.
    """

    class Kind(models.TextChoices):
        MINTED = "minted", "deposited by this hub"
        PROVIDED = "provided", "named by the contributor"
        IMPORTED = "imported", "recorded by an import (medigan)"

    class Status(models.TextChoices):
        PENDING = "pending"
        PINNED = "pinned"
        FAILED = "failed"
        BROKEN = "broken"

    release = models.OneToOneField(
        "registry.Release", on_delete=models.CASCADE, related_name="doi_pin"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # The instance the record lives on (MEDIGAN_ZENODO_URL when the pin was made).
    zenodo_url = models.CharField(max_length=300)
    # What the contributor or the import named; ``doi`` is what was pinned (a concept DOI
    # named by a contributor pins the version that holds the bytes).
    requested_doi = models.CharField(max_length=255, blank=True, default="")
    doi = models.CharField(max_length=255, blank=True, default="")
    concept_doi = models.CharField(max_length=255, blank=True, default="")
    record_id = models.CharField(max_length=64, blank=True, default="")
    record_url = models.CharField(max_length=500, blank=True, default="")
    # A minted pin's deposition, kept from the moment Zenodo made it: a retried pin continues
    # with it (never a second deposition, never a second DOI for one release).
    deposition_id = models.CharField(max_length=64, blank=True, default="")
    bucket_url = models.CharField(max_length=500, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    # Set while a pin task works on it: a second delivery of the task leaves it alone.
    running_since = models.DateTimeField(null=True, blank=True)
    # When a pin task is to start at the latest: when it was queued, or when its retry is due.
    # A pending pin whose task has not come long after that lost its message; the janitor
    # queues it again (``pins_requeue_lost``).
    task_due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    pinned_at = models.DateTimeField(null=True, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "checked_at"], name="pin_status_checked")]

    def __str__(self) -> str:
        return f"{self.release_id}: {self.doi or self.requested_doi or self.kind} ({self.status})"


class PinnedFile(models.Model):
    """A file of a pinned record that holds one of the release's artifacts, as it was pinned:
    the re-check compares Zenodo's record with these."""

    pin = models.ForeignKey(DoiPin, on_delete=models.CASCADE, related_name="files")
    key = models.CharField(max_length=255)
    size = models.BigIntegerField()
    md5 = models.CharField(max_length=32)
    sha256 = models.CharField(max_length=64)
    content_url = models.CharField(max_length=500)
    artifact = models.ForeignKey(
        "registry.Artifact", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pin", "key"], name="unique_pinned_file"),
        ]

    def __str__(self) -> str:
        return f"{self.key} (md5 {self.md5})"


class PinEvent(models.Model):
    """One step of a pin, in order: queued, deposition made, attempt failed, pinned, failed,
    broken, restored, unreachable. Never edited."""

    pin = models.ForeignKey(DoiPin, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32)
    note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.pin_id}: {self.kind}"
