"""Where the time of one hub evaluation goes: each phase of `evaluation_run`, cold and warm.

Run from the repository root: `python benchmarks/evaluation_profile.py [--samples 1000]`.

It builds a throwaway hub in a temporary folder (SQLite, file storage, Celery tasks run in this
process), loads the demo reference sets from ../shared/data, publishes the zoo chest X-ray DCGAN
the way `manage.py seed_demo` does (validation, then the standard evaluation that publishing
queues) and then asks for a second evaluation of the same release with another seed. The first
evaluation computes the reference set's features, the second finds them in the cache. For each
it prints the wall time of the whole `evaluation_run` and the phase timings the evaluation
recorded in its provenance (`provenance["timings"]`), and, with `--cprofile`, the functions that
took the most cumulative time.

Contributed code runs as the hub is configured to run it: bubblewrap when installed, else
`MEDIGAN_SANDBOX=none` (the output says which); `MEDIGAN_SANDBOX` in the environment wins.

`--extractor medical-cnn` (the default, the demo hub's) or `--extractor inception-v3-fid`: the
real FID weights cannot be downloaded here, so the latter loads random weights of the same
network in their place (with the weights file's sha256 check skipped in this process only);
the time is the same, the numbers mean nothing.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ZOO_PACKAGE = REPO_ROOT / "zoo/chestxray_dcgan_64/package"


def _random_inception_weights(path: Path) -> Path:
    import torch

    from evaluation.inception import fid_inception_v3
    from tests.evaluation.random_inception_weights import random_inception_state_dict

    torch.save(random_inception_state_dict(fid_inception_v3(), 2015), path)
    return path


def _skip_inception_sha256_check() -> None:
    # Only for the random stand-in weights of this benchmark; the hub always checks.
    from evaluation import inception

    check = inception.FidInceptionExtractor.__init__

    def unchecked(
        self: inception.FidInceptionExtractor, weights_path: Path | None = None, device: str = "cpu"
    ) -> None:
        check(self, weights_path, device, expected_sha256_prefix=None)

    inception.FidInceptionExtractor.__init__ = unchecked  # type: ignore[method-assign]


def _configure(data_dir: Path, samples: int, extractor: str) -> str:
    sys.path.insert(0, str(REPO_ROOT))
    if extractor == "inception-v3-fid":
        weights = _random_inception_weights(data_dir / "pt_inception-random.pth")
        os.environ["MEDIGAN_INCEPTION_WEIGHTS"] = str(weights)
    os.environ["MEDIGAN_DATA_DIR"] = str(data_dir)
    os.environ["MEDIGAN_MEDIA_ROOT"] = str(data_dir / "media")
    os.environ["MEDIGAN_EVALUATION_SAMPLES"] = str(samples)
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("MEDIGAN_SANDBOX", "bubblewrap" if shutil.which("bwrap") else "none")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
    import django

    django.setup()
    if extractor == "inception-v3-fid":
        _skip_inception_sha256_check()
    return os.environ["MEDIGAN_SANDBOX"]


def _run(label: str, evaluation_id: int, profile: bool) -> None:
    from hub.evaluations import services
    from hub.evaluations.models import Evaluation

    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    services.evaluation_run(evaluation_id=evaluation_id)
    if profiler is not None:
        profiler.disable()
    wall = time.perf_counter() - started
    evaluation = Evaluation.objects.get(pk=evaluation_id)
    if evaluation.status != Evaluation.Status.SUCCEEDED:
        raise SystemExit(f"{label}: evaluation {evaluation.status}: {evaluation.error}")
    timings = evaluation.provenance.get("timings") or evaluation.provenance.get("durations")
    print(f"{label}: evaluation_run {wall:.2f} s wall; fid_rs {evaluation.fid_rs:.4f}")
    print(f"  recorded: {json.dumps(timings)}")
    if profiler is not None:
        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream).sort_stats("cumulative")
        stats.print_stats(30)
        print(stream.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--cprofile", action="store_true", help="print cProfile's top functions")
    parser.add_argument(
        "--extractor", default="medical-cnn", choices=["medical-cnn", "inception-v3-fid"]
    )
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="medigan-evaluation-profile-") as scratch:
        sandbox = _configure(Path(scratch), arguments.samples, arguments.extractor)
        from django.core.management import call_command

        from hub.accounts.services import user_get_or_create
        from hub.celery import app
        from hub.evaluations import services
        from hub.evaluations.models import Evaluation, ReferenceSet
        from hub.registry.services import package_publish_as_operator

        print(
            f"sandbox {sandbox}; {arguments.samples} samples; cores available "
            f"{len(os.sched_getaffinity(0))}; load {os.getloadavg()}"
        )
        clock = time.perf_counter()
        call_command("migrate", verbosity=0)
        call_command("reference_sets_load", stdout=io.StringIO())
        if not ReferenceSet.objects.exists():
            raise SystemExit("no reference sets: ../shared/data is needed")
        print(f"set-up (migrate, reference sets) {time.perf_counter() - clock:.2f} s")

        # Publishing queues the standard evaluation; keep it queued so it can be timed alone.
        app.conf.task_always_eager = False
        app.conf.broker_url = "memory://"
        operator = user_get_or_create(
            username="operator",
            password=secrets.token_urlsafe(16),
            is_staff=True,
            reviewer=True,
        )
        clock = time.perf_counter()
        release = package_publish_as_operator(
            package_dir=ZOO_PACKAGE, operator=operator, note="profile"
        )
        print(f"publish (submit, validate, publish) {time.perf_counter() - clock:.2f} s")
        first = Evaluation.objects.filter(release=release, extractor_id=arguments.extractor).first()
        if first is None:
            raise SystemExit(f"publishing queued no {arguments.extractor} evaluation")
        print(f"extractor {first.extractor_id}, reference {first.reference_set.slug}")
        _run("cold (reference features computed)", first.pk, arguments.cprofile)
        second = services.evaluation_request(
            release=release,
            reference_set=first.reference_set,
            extractor_id=first.extractor_id,
            num_samples=arguments.samples,
            seed=1,
        )
        _run("warm (reference features cached)", second.pk, arguments.cprofile)
        print(f"load after {os.getloadavg()}")


if __name__ == "__main__":
    main()
