"""Writes on evaluations: loading reference sets, queueing and running metric evaluations.

Evaluations run only for published releases. A run whose worker was lost is found by the
janitor (``evaluations_janitor_run``) or by its own redelivered task, and queued again, up to
``MEDIGAN_MAX_ATTEMPTS`` starts; then it fails with an error that says so.

Each evaluation records how long each phase took (``provenance["timings"]``, see
``_compute``); ``benchmarks/evaluation_profile.py`` prints them for one run and docs/evaluation.md
says where the time goes.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from evaluation.options import PreprocessOptions
from evaluation.references import ReferenceImages
from hub import signals
from hub.evaluations import selectors
from hub.evaluations.models import Evaluation, ReferenceSet
from hub.sandbox import redact, sandbox_generate
from hub.storage import stored_open
from hub.work import StaleWork, paths_remove_stale
from medigan_catalog.errors import CatalogError, ErrorCode
from medigan_catalog.lifecycle import ReleaseState
from medigan_catalog.packaging import ArchiveLimits, safe_extract, verify_file
from medigan_catalog.schema import card_from_json
from medigan_catalog.validation import resolve_generation_arguments
from medigan_client.batching import SEED_SCHEME, SampleDigest, default_batch_size
from medigan_client.runtime.failures import describe_exception

if TYPE_CHECKING:
    # Only for annotations: evaluations reach the registry's releases through their foreign key
    # and never import the registry's code (the import-linter independence contract).
    from hub.registry.models import Release

logger = logging.getLogger(__name__)

_COPY_CHUNK_BYTES = 1024 * 1024
# Bounds on one sandbox run of an evaluation's generation (see `_SampleSpans`): the pixels it
# returns, and the share of its wall-clock limit that its measured pace may fill.
_SPAN_MAX_BYTES = 256 * 1024 * 1024
_SPAN_TIME_SHARE = 0.25


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
    changing its images would silently change what their numbers mean. `reference_set_load`
    also queues the evaluations the set calls for.
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


def reference_set_load(
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
) -> tuple[ReferenceSet, list[Evaluation]]:
    """Store a reference set (`reference_set_create`) and queue what it calls for: the
    evaluation of every published release that fits it and has none against it yet
    (`evaluations_queue_for_reference_set`). Returns the set and the evaluations queued now.

    A set loaded after the models were published so fills the leaderboard by itself; loading it
    again queues nothing new.
    """
    reference_set = reference_set_create(
        slug=slug,
        title=title,
        modality=modality,
        match_terms=match_terms,
        split=split,
        licence=licence,
        citation=citation,
        source=source,
        images=images,
        source_paths=source_paths,
    )
    return reference_set, evaluations_queue_for_reference_set(reference_set=reference_set)


class EvaluationNotAllowedError(CatalogError):
    """An evaluation was asked of a release that is not published."""

    code = ErrorCode.TRANSITION_NOT_ALLOWED


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

    Only a published release is evaluated: evaluating runs the release's code again, which is
    for releases the hub stands behind, not for rejected, withdrawn or unreviewed ones. A failed
    run with the same parameters is queued again, so staff can retry after a fix.
    """
    state = type(release).objects.filter(pk=release.pk).values_list("state", flat=True).first()
    if state != ReleaseState.PUBLISHED:
        raise EvaluationNotAllowedError(
            f"{release.release_id} is {state}, not published: only published releases are "
            "evaluated",
            {"state": state},
        )
    options = preprocess or _default_preprocess()
    with transaction.atomic():
        evaluation, created = Evaluation.objects.select_for_update().get_or_create(
            release=release,
            reference_set=reference_set,
            extractor_id=extractor_id,
            preprocess_key=options.key(),
            num_samples=num_samples,
            seed=seed,
            defaults={
                "preprocess": options.to_dict(),
                "requested_by": requested_by,
                "queued_at": timezone.now(),
            },
        )
        if not created and evaluation.status != Evaluation.Status.FAILED:
            return evaluation
        if not created:
            evaluation.status = Evaluation.Status.QUEUED
            evaluation.error = ""
            evaluation.requested_by = requested_by
            evaluation.attempts = 0
            evaluation.queued_at = timezone.now()
            evaluation.save(
                update_fields=["status", "error", "requested_by", "attempts", "queued_at"]
            )
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
    release = _release_model().objects.select_related("generative_model").get(pk=release_id)
    if release.state != ReleaseState.PUBLISHED:
        # Published and then changed again before this ran (deprecated): nothing to evaluate.
        return []
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


def evaluations_queue_for_reference_set(
    *, reference_set: ReferenceSet, requested_by: User | None = None
) -> list[Evaluation]:
    """Queue the hub's standard evaluation against ``reference_set`` of every published release
    that fits it and has none yet with an available extractor; return the evaluations queued.

    Idempotent: a release already evaluated against the set with an extractor (queued, running,
    finished or failed) is left alone, so loading a set twice queues nothing new. The runs are
    the ones publication queues (``evaluations_queue_for_release``): the same extractors, sample
    count and default preprocessing, through `evaluation_request` and the ``gpu`` queue.
    """
    return [
        evaluation_request(
            release=release,
            reference_set=reference_set,
            extractor_id=extractor_id,
            num_samples=int(settings.MEDIGAN_EVALUATION_SAMPLES),
            requested_by=requested_by,
        )
        for extractor_id in selectors.extractors_available()
        for release in selectors.releases_awaiting_evaluation(
            reference_set=reference_set, extractor_id=extractor_id
        )
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


def release_package_extract(*, release: Release, destination: Path) -> Path:
    """Copy a release's stored package out of storage, verify its sha256 and unpack it safely.

    Returns the package directory. The bytes are checked again because storage is outside the
    database's guarantees.
    """
    artifact = release.artifacts.filter(role="package").exclude(file="").first()
    if artifact is None:
        raise CatalogError(
            f"{release.release_id} has no package stored on this hub",
            code=ErrorCode.ARTIFACT_UNREACHABLE,
        )
    destination.mkdir(parents=True, exist_ok=True)
    archive = destination / artifact.filename
    # Streamed out of storage: on S3 the object's body is read as it arrives, never held whole.
    with (
        stored_open(artifact.file.storage, str(artifact.file.name)) as source,
        archive.open("wb") as target,
    ):
        shutil.copyfileobj(source, target, _COPY_CHUNK_BYTES)
    verify_file(archive, sha256=artifact.sha256, size=artifact.size)
    package_dir = destination / "package"
    safe_extract(archive, package_dir, ArchiveLimits())
    return package_dir


def _release_model() -> type[Release]:
    """The registry's release model, found through the evaluation's foreign key to it."""
    return cast("type[Release]", Evaluation._meta.get_field("release").related_model)


def evaluation_stale_seconds(evaluation: Evaluation) -> float:
    """How long an evaluation may stay ``running`` before its run is taken for lost."""
    configured = settings.MEDIGAN_EVALUATION_STALE_SECONDS
    if configured is not None:
        return float(configured)
    # Generation is the long part: each batch runs under its own time limit in the sandbox.
    # Twice the batches' limits (features and metrics are small beside them) plus the re-queue
    # delay is past any run that is still alive.
    batch_size = max(int(settings.MEDIGAN_EVALUATION_BATCH_SIZE), 1)
    batches = max(math.ceil(evaluation.num_samples / batch_size), 1)
    return 2 * batches * float(settings.MEDIGAN_EVALUATION_BATCH_TIMEOUT_SECONDS) + float(
        settings.MEDIGAN_REQUEUE_AFTER_SECONDS
    )


def _is_stale(evaluation: Evaluation) -> bool:
    started = evaluation.started_at or evaluation.created_at
    return timezone.now() - started > timedelta(seconds=evaluation_stale_seconds(evaluation))


def evaluation_recover(
    *, evaluation_id: int, reason: str, force: bool = False
) -> Evaluation | None:
    """Put a ``running`` evaluation whose worker was lost back on the queue, or fail it.

    Once the run has been started ``MEDIGAN_MAX_ATTEMPTS`` times it fails with an error that
    says so. Returns None, changing nothing, when the evaluation is not ``running``, or, unless
    ``force`` (the caller knows the previous run is dead), when it is not past its deadline.
    The caller queues the task again if it needs one.
    """
    max_attempts = int(settings.MEDIGAN_MAX_ATTEMPTS)
    with transaction.atomic():
        evaluation = Evaluation.objects.select_for_update().filter(pk=evaluation_id).first()
        if evaluation is None or evaluation.status != Evaluation.Status.RUNNING:
            return None
        if not force and not _is_stale(evaluation):
            return None
        now = timezone.now()
        if evaluation.attempts >= max_attempts:
            evaluation.status = Evaluation.Status.FAILED
            evaluation.error = (
                f"the evaluation was started {evaluation.attempts} times and never finished "
                f"({reason}); the hub gave up after {max_attempts} attempts. Generation that "
                "crashes or exhausts the worker ends like this; staff can queue it again."
            )
            evaluation.finished_at = now
            evaluation.save(update_fields=["status", "error", "finished_at"])
        else:
            evaluation.status = Evaluation.Status.QUEUED
            evaluation.queued_at = now
            evaluation.error = (
                f"attempt {evaluation.attempts} of {max_attempts} did not finish ({reason}); "
                "queued again"
            )
            evaluation.save(update_fields=["status", "queued_at", "error"])
        # The lost run's scratch; this machine's only (another host's is its own janitor's).
        transaction.on_commit(lambda: _work_folders_remove(evaluation_id))
    return evaluation


def _work_folders_remove(evaluation_id: int) -> None:
    root = Path(settings.MEDIGAN_WORK_DIR)
    if root.is_dir():
        for path in root.glob(f"evaluate-{evaluation_id}-*"):
            shutil.rmtree(path, ignore_errors=True)


def evaluations_requeue_stale() -> StaleWork:
    """Re-queue evaluations that were lost: left ``queued`` or ``running`` too long.

    A ``queued`` one waiting longer than ``MEDIGAN_REQUEUE_AFTER_SECONDS`` gets its task again
    (the message was lost, e.g. with a killed worker on the folder broker); a ``running`` one
    past its deadline goes back to ``queued`` and gets its task, or fails after too many
    attempts. A repeated task is harmless: a run only starts from ``queued``.
    """
    now = timezone.now()
    requeue_cutoff = now - timedelta(seconds=float(settings.MEDIGAN_REQUEUE_AFTER_SECONDS))
    requeued: list[int] = []
    restarted: list[int] = []
    given_up: list[int] = []
    waiting = (
        Evaluation.objects.filter(status=Evaluation.Status.QUEUED)
        .annotate(waiting_since=Coalesce("queued_at", "created_at"))
        .filter(waiting_since__lt=requeue_cutoff)
        .values_list("pk", flat=True)
    )
    for evaluation_id in list(waiting):
        # Touching queued_at keeps the next pass from sending it again while it waits its turn.
        if Evaluation.objects.filter(pk=evaluation_id, status=Evaluation.Status.QUEUED).update(
            queued_at=now
        ):
            _queue(evaluation_id)
            requeued.append(evaluation_id)
    for evaluation in Evaluation.objects.filter(status=Evaluation.Status.RUNNING):
        if not _is_stale(evaluation):
            continue
        seconds = round(evaluation_stale_seconds(evaluation))
        recovered = evaluation_recover(
            evaluation_id=evaluation.pk,
            reason=f"no result within {seconds} s: the worker running it was lost",
        )
        if recovered is None:
            continue
        if recovered.status == Evaluation.Status.QUEUED:
            _queue(evaluation.pk)
            restarted.append(evaluation.pk)
        else:
            given_up.append(evaluation.pk)
    return StaleWork(requeued=requeued, restarted=restarted, given_up=given_up)


_EVALUATION_FOLDER = re.compile(r"^evaluate-(?P<id>\d+)-")


def _evaluation_folder_is_live(path: Path) -> bool:
    match = _EVALUATION_FOLDER.match(path.name)
    if match is None:
        return False
    evaluation = Evaluation.objects.filter(
        pk=int(match["id"]), status=Evaluation.Status.RUNNING
    ).first()
    return evaluation is not None and not _is_stale(evaluation)


def evaluations_janitor_run() -> dict[str, Any]:
    """One pass of the evaluations' janitor: lost runs re-queued, their work folders removed."""
    stale = evaluations_requeue_stale()
    removed = paths_remove_stale(
        root=Path(settings.MEDIGAN_WORK_DIR),
        prefix="evaluate-",
        older_than_seconds=float(settings.MEDIGAN_REQUEUE_AFTER_SECONDS),
        keep=_evaluation_folder_is_live,
    )
    report = {
        "requeued": stale.requeued,
        "restarted": stale.restarted,
        "failed": stale.given_up,
        "removed": [str(path) for path in removed],
    }
    if stale.requeued or stale.restarted or stale.given_up or removed:
        logger.info("evaluations janitor: %s", report)
    return report


def evaluation_run(
    *, evaluation_id: int, task_id: str = "", previous_run_lost: bool = False
) -> Evaluation | None:
    """Run a queued evaluation and store its metrics and provenance.

    Returns None when the evaluation is no longer queued (a repeated or late task). One found
    ``running`` is another run's: it is restarted when that run is known to be dead, and left
    alone otherwise until it passes its deadline. A run is known dead when the caller says so
    (``previous_run_lost``: a retry, or a message the broker marked redelivered) or when this
    very task (``task_id``) started it: a message is delivered again only when the worker that
    held it was lost. An evaluation whose release is no longer published fails without running
    its code. Generation runs the package in the sandbox, batch by batch; the metric library
    streams the features, so memory does not grow with the number of samples.
    """
    found = Evaluation.objects.filter(pk=evaluation_id).values_list("status", "task_id").first()
    if found is not None and found[0] == Evaluation.Status.RUNNING:
        lost = previous_run_lost or (bool(task_id) and found[1] == task_id)
        recovered = evaluation_recover(
            evaluation_id=evaluation_id,
            reason="the worker running it was lost" if lost else "no result within its deadline",
            force=lost,
        )
        if recovered is None or recovered.status != Evaluation.Status.QUEUED:
            return recovered
    with transaction.atomic():
        evaluation = (
            Evaluation.objects.select_for_update()
            .select_related("release__generative_model", "reference_set")
            .get(pk=evaluation_id)
        )
        if evaluation.status != Evaluation.Status.QUEUED:
            return None
        if evaluation.release.state != ReleaseState.PUBLISHED:
            evaluation.status = Evaluation.Status.FAILED
            evaluation.error = (
                f"{evaluation.release.release_id} is {evaluation.release.state}, no longer "
                "published: only published releases are evaluated, so its code was not run"
            )
            evaluation.finished_at = timezone.now()
            evaluation.save(update_fields=["status", "error", "finished_at"])
            return evaluation
        evaluation.status = Evaluation.Status.RUNNING
        evaluation.started_at = timezone.now()
        evaluation.attempts += 1
        evaluation.task_id = task_id
        evaluation.save(update_fields=["status", "started_at", "attempts", "task_id"])

    work_root = Path(settings.MEDIGAN_WORK_DIR)
    work_root.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=f"evaluate-{evaluation_id}-", dir=work_root))
    try:
        result = _compute(evaluation, work_dir)
    except Exception as error:
        # The short form of a package's failure is recorded, its full traceback only logged.
        failure = describe_exception(error, ())
        logger.exception(
            "evaluation %s failed: %s\n%s", evaluation_id, failure.message, failure.traceback
        )
        Evaluation.objects.filter(pk=evaluation_id).update(
            status=Evaluation.Status.FAILED,
            # Staff and the release page read this: the package's output, never the hub's paths.
            error=redact(failure.message)[:4000],
            finished_at=timezone.now(),
        )
        return Evaluation.objects.get(pk=evaluation_id)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)

    with transaction.atomic():
        Evaluation.objects.filter(pk=evaluation_id).update(
            status=Evaluation.Status.SUCCEEDED,
            error="",
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
        # The snapshot carries hub-computed metrics: a new number is a catalogue change, and
        # the registry, the serial's owner, bumps it inside this transaction.
        release_id = (
            Evaluation.objects.filter(pk=evaluation_id).values_list("release_id", flat=True).get()
        )
        signals.evaluation_finished.send(
            sender=Evaluation, evaluation_id=evaluation_id, release_id=release_id
        )
    return Evaluation.objects.get(pk=evaluation_id)


class _SampleSpans:
    """The runner's batches of generated samples, cut from fewer, larger sandbox runs.

    Every sandbox run starts a fresh interpreter that imports torch and loads the model, seconds
    of overhead that a run of 250 samples of a small GAN spends more time on than on generating
    (docs/evaluation.md, "Where the time goes"). The first run is the runner's batch, whose pace
    is then known; each later run covers as many of the remaining samples as fit both
    `_SPAN_MAX_BYTES` of pixels and `_SPAN_TIME_SHARE` of the run's wall-clock limit at the pace
    measured so far (start-up included, so the estimate errs long), and never fewer than the
    batch asked for. A run is never longer than the limit allows, so ``evaluation_stale_seconds``
    (one limit per batch) still bounds the whole generation.
    """

    def __init__(
        self,
        run: Callable[[int, int], np.ndarray[Any, Any]],
        *,
        total: int,
        wall_seconds: float,
    ) -> None:
        self._run = run
        self._total = total
        self._wall_seconds = wall_seconds
        self._pending: np.ndarray[Any, Any] | None = None
        self._generated = 0
        self._seconds = 0.0
        self._bytes_per_sample = 1
        self.runs = 0

    def take(self, count: int) -> np.ndarray[Any, Any]:
        """The next `count` samples of the sequence, generating more when too few are left."""
        parts: list[np.ndarray[Any, Any]] = []
        needed = count
        while needed > 0:
            if self._pending is None or self._pending.shape[0] == 0:
                self._pending = self._generate(self._span(needed))
            part = self._pending[:needed]
            self._pending = self._pending[needed:]
            parts.append(part)
            needed -= part.shape[0]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _span(self, count: int) -> int:
        if self._generated == 0:
            return count  # the pace is unknown: the runner's batch, as the limits were set for
        remaining = self._total - self._generated
        per_sample_seconds = self._seconds / self._generated
        by_time = int(self._wall_seconds * _SPAN_TIME_SHARE / max(per_sample_seconds, 1e-9))
        by_bytes = _SPAN_MAX_BYTES // self._bytes_per_sample
        return max(count, min(remaining, by_time, by_bytes))

    def _generate(self, span: int) -> np.ndarray[Any, Any]:
        clock = time.perf_counter()
        samples = self._run(span, self._generated)
        self._seconds += time.perf_counter() - clock
        if samples.shape[0] != span:
            raise ValueError(f"the sandbox returned {samples.shape[0]} samples, asked for {span}")
        self._bytes_per_sample = max(int(samples[:1].nbytes), 1)
        self._generated += span
        self.runs += 1
        return samples


def _compute(evaluation: Evaluation, work_dir: Path) -> dict[str, Any]:
    """Generate the evaluation's samples, compute its metrics; return them with provenance.

    Generation goes through the client's core (:mod:`medigan_client.batching`): the samples are
    ``[0, num_samples)`` of the sequence of ``(evaluation.seed, default_batch_size(card))``, exactly
    those ``client.generate(model, num_samples, seed=evaluation.seed)`` writes. The metric
    library asks for them in chunks of its own batch size and hands each chunk a seed of its
    own, which is not used: the chunks are consecutive runs of that one sequence, cut from as
    few sandbox runs as their limits allow (:class:`_SampleSpans`). The provenance's
    ``generation`` says how to reproduce them and their sha256
    (:class:`~medigan_client.batching.SampleDigest`).

    ``provenance["timings"]`` holds the seconds of each phase: ``package_s`` (copying, checking
    and unpacking the package), ``reference_load_s`` (reading and verifying the reference
    images), then the metric library's ``load_extractor_s``, ``features_reference_s``,
    ``generate_s`` (the sandbox runs), ``features_generated_s`` and ``metrics_s``, and
    ``total_s`` for all of this function.
    """
    started = time.perf_counter()
    release = evaluation.release
    card = card_from_json(release.card)
    package_dir = release_package_extract(release=release, destination=work_dir)
    package_s = time.perf_counter() - started
    arguments = resolve_generation_arguments(card, {})
    seed = int(evaluation.seed)
    digest = SampleDigest()
    wall_seconds = float(settings.MEDIGAN_EVALUATION_BATCH_TIMEOUT_SECONDS)

    def sandbox_run(num_samples: int, start_index: int) -> np.ndarray[Any, Any]:
        # Published code is still contributed code: it runs in the same sandbox as validation.
        return sandbox_generate(
            package_dir,
            card,
            num_samples,
            seed=seed,
            device=str(settings.MEDIGAN_EVALUATION_DEVICE),
            args=arguments,
            wall_seconds=wall_seconds,
            start_index=start_index,
            batch_size=default_batch_size(card),
        ).samples

    spans = _SampleSpans(sandbox_run, total=evaluation.num_samples, wall_seconds=wall_seconds)

    def generator(num_samples: int, _chunk_seed: int) -> np.ndarray[Any, Any]:
        samples = spans.take(num_samples)
        digest.update(samples)
        return samples

    # The metric runner (and torch with it) is imported here, in the evaluation worker, rather
    # than when Django starts: web and sync processes must not carry torch's memory.
    from evaluation.runner import EvaluationOptions, evaluate

    options = EvaluationOptions(
        extractor_id=evaluation.extractor_id,
        num_samples=evaluation.num_samples,
        batch_size=int(settings.MEDIGAN_EVALUATION_BATCH_SIZE),
        seed=int(evaluation.seed),
        preprocess=PreprocessOptions.from_dict(evaluation.preprocess),
        cache_dir=Path(settings.MEDIGAN_EVALUATION_CACHE_DIR),
        weights_path=selectors.extractor_weights_path(evaluation.extractor_id),
    )
    clock = time.perf_counter()
    reference = _load_reference(evaluation.reference_set)
    reference_load_s = time.perf_counter() - clock
    result = evaluate(generator, reference, options)
    payload: dict[str, Any] = result.to_dict()
    payload["timings"] = {
        "package_s": package_s,
        "reference_load_s": reference_load_s,
        **{name: value for name, value in payload["timings"].items() if name != "total_s"},
        "total_s": time.perf_counter() - started,
    }
    payload["generation"] = {
        "seed": seed,
        "seed_scheme": SEED_SCHEME,
        "batch_size": default_batch_size(card),
        "start_index": 0,
        "num_samples": digest.count,
        "args": dict(arguments),
        "device": str(settings.MEDIGAN_EVALUATION_DEVICE),
        "samples_sha256": digest.hexdigest(),
        "sandbox_runs": spans.runs,
    }
    return payload
