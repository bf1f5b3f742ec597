"""Writes on evaluations: loading reference sets, queueing and running metric evaluations."""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from evaluation.preprocessing import PreprocessOptions
from evaluation.references import ReferenceImages
from evaluation.runner import EvaluationOptions, evaluate
from hub.evaluations import selectors
from hub.evaluations.models import Evaluation, ReferenceSet
from hub.registry.models import Release
from hub.registry.services import catalog_serial_bump, release_package_extract
from medigan_catalog.schema import card_from_json
from medigan_catalog.validation import resolve_generation_arguments
from medigan_client.runtime.sandbox import generate_in_subprocess

logger = logging.getLogger(__name__)


def reference_set_create(
    *,
    slug: str,
    title: str,
    modality: str,
    match_terms: Sequence[Sequence[str]],
    split: str,
    licence: str,
    citation: str,
    source: str,
    images: np.ndarray[Any, Any],
    source_paths: Sequence[str],
) -> ReferenceSet:
    """Store a reference set's images and manifest; an identical existing set is returned as is.

    A different set under an existing slug is refused: evaluations point at a reference set, and
    changing its images would silently change what their numbers mean.
    """
    reference = ReferenceImages.from_images(slug, split, images)
    existing = ReferenceSet.objects.filter(slug=slug).first()
    if existing is not None:
        if existing.images_sha256 != reference.sha256:
            raise ValueError(
                f"reference set {slug!r} exists with other images ({existing.images_sha256}); "
                "give the new set another slug"
            )
        return existing
    manifest = [
        {"index": index, "sha256": hashlib.sha256(image.tobytes()).hexdigest(), "source": path}
        for index, (image, path) in enumerate(zip(images, source_paths, strict=True))
    ]
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images)
    reference_set = ReferenceSet(
        slug=slug,
        title=title,
        modality=modality,
        match_terms=[[term.lower() for term in group] for group in match_terms],
        split=split,
        licence=licence,
        citation=citation,
        source=source,
        image_count=int(images.shape[0]),
        height=int(images.shape[1]),
        width=int(images.shape[2]),
        channels=int(images.shape[3]) if images.ndim == 4 else 1,
        images_sha256=reference.sha256,
        manifest=manifest,
    )
    reference_set.images.save(f"{slug}.npz", ContentFile(buffer.getvalue()), save=False)
    reference_set.save()
    return reference_set


def _default_preprocess() -> PreprocessOptions:
    return PreprocessOptions()


def evaluation_request(
    *,
    release: Release,
    reference_set: ReferenceSet,
    extractor_id: str,
    num_samples: int,
    seed: int = 0,
    preprocess: PreprocessOptions | None = None,
    requested_by: User | None = None,
) -> Evaluation:
    """Queue an evaluation (on the ``gpu`` queue); an identical finished run is not repeated.

    A failed run with the same parameters is queued again, so staff can retry after a fix.
    """
    options = preprocess or _default_preprocess()
    with transaction.atomic():
        evaluation, created = Evaluation.objects.select_for_update().get_or_create(
            release=release,
            reference_set=reference_set,
            extractor_id=extractor_id,
            preprocess_key=options.key(),
            num_samples=num_samples,
            seed=seed,
            defaults={"preprocess": options.to_dict(), "requested_by": requested_by},
        )
        if not created and evaluation.status != Evaluation.Status.FAILED:
            return evaluation
        if not created:
            evaluation.status = Evaluation.Status.QUEUED
            evaluation.error = ""
            evaluation.requested_by = requested_by
            evaluation.save(update_fields=["status", "error", "requested_by"])
        evaluation_id = evaluation.pk
        transaction.on_commit(lambda: _queue(evaluation_id))
    return evaluation


def _queue(evaluation_id: int) -> None:
    from hub.evaluations.tasks import evaluation_run_task

    try:
        evaluation_run_task.delay(evaluation_id)
    except Exception:
        logger.exception("could not queue evaluation %s", evaluation_id)


def evaluations_queue_for_release(
    *, release_id: int, requested_by: User | None = None
) -> list[Evaluation]:
    """Queue the hub's standard evaluation of a release against every matching reference set."""
    release = Release.objects.select_related("generative_model").get(pk=release_id)
    if not release.artifacts.filter(role="package").exclude(file="").exists():
        # Packages hosted elsewhere (medigan's on Zenodo) cannot be run here.
        return []
    return [
        evaluation_request(
            release=release,
            reference_set=reference_set,
            extractor_id=extractor_id,
            num_samples=int(settings.MEDIGAN_EVALUATION_SAMPLES),
            requested_by=requested_by,
        )
        for reference_set in selectors.reference_sets_matching(card=release.card)
        for extractor_id in selectors.extractors_available()
    ]


def _load_reference(reference_set: ReferenceSet) -> ReferenceImages:
    with reference_set.images.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
        images = np.asarray(data["images"])
    # Construction checks the pixels against the hash recorded when the set was loaded.
    return ReferenceImages(
        id=reference_set.slug,
        split=reference_set.split,
        images=images,
        sha256=reference_set.images_sha256,
    )


def evaluation_run(*, evaluation_id: int) -> Evaluation | None:
    """Run a queued evaluation and store its metrics and provenance.

    Returns None when the evaluation is no longer queued (a repeated or late task). Generation
    runs the package in the sandboxed child process, batch by batch; the metric library streams
    the features, so memory does not grow with the number of samples.
    """
    with transaction.atomic():
        evaluation = (
            Evaluation.objects.select_for_update()
            .select_related("release__generative_model", "reference_set")
            .get(pk=evaluation_id)
        )
        if evaluation.status != Evaluation.Status.QUEUED:
            return None
        evaluation.status = Evaluation.Status.RUNNING
        evaluation.started_at = timezone.now()
        evaluation.save(update_fields=["status", "started_at"])

    work_root = Path(settings.MEDIGAN_WORK_DIR)
    work_root.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=f"evaluate-{evaluation_id}-", dir=work_root))
    try:
        result = _compute(evaluation, work_dir)
    except Exception as error:
        logger.exception("evaluation %s failed", evaluation_id)
        Evaluation.objects.filter(pk=evaluation_id).update(
            status=Evaluation.Status.FAILED,
            error=f"{type(error).__name__}: {error}"[:4000],
            finished_at=timezone.now(),
        )
        return Evaluation.objects.get(pk=evaluation_id)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

    with transaction.atomic():
        Evaluation.objects.filter(pk=evaluation_id).update(
            status=Evaluation.Status.SUCCEEDED,
            fid_rs=result["fid_rs"],
            fid_rr_mean=result["fid_rr_mean"],
            fid_rr_std=result["fid_rr_std"],
            r_fid=result["r_fid"],
            kid_mean=result["kid_mean"],
            kid_std=result["kid_std"],
            precision=result["precision"],
            recall=result["recall"],
            comparable_with_published=bool(result["comparable_with_published"]),
            provenance=result,
            finished_at=timezone.now(),
        )
        # The snapshot carries hub-computed metrics: a new number is a catalogue change.
        catalog_serial_bump()
    return Evaluation.objects.get(pk=evaluation_id)


def _compute(evaluation: Evaluation, work_dir: Path) -> dict[str, Any]:
    release = evaluation.release
    card = card_from_json(release.card)
    package_dir = release_package_extract(release=release, destination=work_dir)
    arguments = resolve_generation_arguments(card, {})

    def generator(num_samples: int, seed: int) -> np.ndarray[Any, Any]:
        return generate_in_subprocess(
            package_dir,
            card,
            num_samples,
            seed=seed,
            device=str(settings.MEDIGAN_EVALUATION_DEVICE),
            args=arguments,
            timeout_seconds=float(settings.MEDIGAN_EVALUATION_BATCH_TIMEOUT_SECONDS),
            memory_limit_bytes=int(settings.MEDIGAN_SMOKE_MEMORY_BYTES),
        )

    options = EvaluationOptions(
        extractor_id=evaluation.extractor_id,
        num_samples=evaluation.num_samples,
        batch_size=int(settings.MEDIGAN_EVALUATION_BATCH_SIZE),
        seed=int(evaluation.seed),
        preprocess=PreprocessOptions.from_dict(evaluation.preprocess),
        cache_dir=Path(settings.MEDIGAN_EVALUATION_CACHE_DIR),
        weights_path=selectors.extractor_weights_path(evaluation.extractor_id),
    )
    result = evaluate(generator, _load_reference(evaluation.reference_set), options)
    payload: dict[str, Any] = result.to_dict()
    return payload
