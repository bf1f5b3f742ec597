"""Evaluation records: reference sets of real images, and metric runs of releases against them."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ReferenceSet(models.Model):
    """A held-out set of real images that generated images are compared with.

    The images live in storage as one ``.npz`` (``images`` uint8); ``manifest`` lists each image's
    sha256 and source so the set can be audited, and ``images_sha256`` identifies the exact array
    in cache keys and in every evaluation's provenance.
    """

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    modality = models.CharField(max_length=100)
    # Lower-case words; a release whose card's modality/organ values contain one is evaluated here.
    match_terms = models.JSONField(default=list)
    split = models.CharField(max_length=32)
    licence = models.CharField(max_length=64)
    citation = models.TextField(blank=True, default="")
    source = models.TextField(blank=True, default="")
    image_count = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    channels = models.PositiveSmallIntegerField()
    images = models.FileField(upload_to="references/", max_length=300)
    images_sha256 = models.CharField(max_length=64)
    manifest = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Evaluation(models.Model):
    """One metric run: a release against a reference set with one extractor and preprocessing."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    release = models.ForeignKey(
        "registry.Release", on_delete=models.CASCADE, related_name="evaluations"
    )
    reference_set = models.ForeignKey(
        ReferenceSet, on_delete=models.PROTECT, related_name="evaluations"
    )
    extractor_id = models.CharField(max_length=64)
    preprocess = models.JSONField(default=dict)
    preprocess_key = models.CharField(max_length=200)
    num_samples = models.PositiveIntegerField()
    seed = models.BigIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fid_rs = models.FloatField(null=True, blank=True)
    fid_rr_mean = models.FloatField(null=True, blank=True)
    fid_rr_std = models.FloatField(null=True, blank=True)
    r_fid = models.FloatField(null=True, blank=True)
    kid_mean = models.FloatField(null=True, blank=True)
    kid_std = models.FloatField(null=True, blank=True)
    precision = models.FloatField(null=True, blank=True)
    recall = models.FloatField(null=True, blank=True)
    comparable_with_published = models.BooleanField(default=False)
    # Everything needed to compare two numbers: extractor weights, reference hash, counts,
    # kept features, software versions, and the seconds of each phase ("timings").
    provenance = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    # How many times a worker started this run; the janitor gives up after MEDIGAN_MAX_ATTEMPTS.
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the run was last put on the queue; the janitor re-sends it when it waits too long.
    queued_at = models.DateTimeField(null=True, blank=True)
    # The task that started the current run: the same task delivered again means its worker was
    # lost, and the run restarts at once.
    task_id = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "release",
                    "reference_set",
                    "extractor_id",
                    "preprocess_key",
                    "num_samples",
                    "seed",
                ],
                name="unique_evaluation_run",
            )
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.release} vs {self.reference_set} ({self.extractor_id}): {self.status}"
