"""Generation: files and manifest, seeding and splitting, resume, the write pipeline, formats,
and the output folder rules (refuse, resume, overwrite)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image

from medigan_catalog.schema import Card, card_from_json
from medigan_client import generate as generate_module
from medigan_client.batching import BATCH, SAMPLE, SEED_SCHEME, derive_seed, plan_batches
from medigan_client.errors import (
    BadRequestError,
    GenerationFailedError,
    OfflineError,
    OutputExistsError,
)
from medigan_client.generate import MANIFEST_NAME, GenerationOptions, GenerationResult
from medigan_client.outputs import Role, SampleWriter, WrittenFile, write_atomically
from medigan_client.runtime import GeneratedBatch, Runner, open_runner
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    from conftest import FakeHub


def batch_seed(seed: int, start: int) -> int:
    return derive_seed(BATCH, seed, start)


def sample_seed(seed: int, index: int) -> int:
    return derive_seed(SAMPLE, seed, index)


def generate(
    settings: ClientSettings, model: str, num_samples: int, output_dir: Path, **options: Any
) -> GenerationResult:
    """The module's ``generate`` with its options given as keywords, as ``Client.generate``."""
    session = options.pop("session", None)
    return generate_module.generate(
        settings, model, num_samples, output_dir, GenerationOptions(**options), session=session
    )


def generate_from_package(
    card: Card, package_dir: Path, num_samples: int, output_dir: Path, **options: Any
) -> GenerationResult:
    """``generate_from_package`` with its options given as keywords."""
    extra = {
        name: options.pop(name)
        for name in ("runner", "settings", "package_sha256")
        if name in options
    }
    return generate_module.generate_from_package(
        card, package_dir, num_samples, output_dir, GenerationOptions(**options), **extra
    )


def _digests(directory: Path) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.glob("*.png"))]


def test_writes_pngs_and_a_manifest(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = generate(
        settings, "zoo/noise-8", 10, out, seed=3, batch_size=4, device="cpu", progress=False
    )
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [f"{i:06d}.png" for i in range(10)]
    assert result.files == [out / name for name in names]
    with Image.open(out / "000000.png") as image:
        assert image.mode == "L"
        assert image.size == (8, 8)
    lines = [json.loads(line) for line in result.manifest_path.read_text().splitlines()]
    assert len(lines) == 10
    sha = published["artifacts"][0]["sha256"]
    assert lines[5] == {
        "file": "000005.png",
        "model": "zoo/noise-8",
        "version": "1.0.0",
        "package_sha256": sha,
        "seed": 3,
        "index": 5,
        "batch_seed": batch_seed(3, 4),
        "batch_start": 4,
        "batch_size": 4,
        "seed_scheme": SEED_SCHEME,
        "args": {"brightness": 128},
    }
    # Each image is reproducible from its manifest line alone.
    expected = np.random.default_rng(lines[5]["batch_seed"]).normal(128, 20.0, size=(4, 8, 8))
    with Image.open(out / "000005.png") as image:
        assert np.array_equal(np.asarray(image), np.clip(expected, 0, 255).astype(np.uint8)[1])


def test_same_seed_same_images_other_seed_other_images(
    settings: ClientSettings, published: dict[str, Any], tmp_path: Path
) -> None:
    generate(settings, "zoo/noise-8", 5, tmp_path / "a", seed=1, device="cpu", progress=False)
    generate(settings, "zoo/noise-8", 5, tmp_path / "b", seed=1, device="cpu", progress=False)
    generate(settings, "zoo/noise-8", 5, tmp_path / "c", seed=2, device="cpu", progress=False)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert set(_digests(tmp_path / "a")).isdisjoint(_digests(tmp_path / "c"))


def test_generation_arguments_are_typed_from_text(
    settings: ClientSettings, published: dict[str, Any], tmp_path: Path
) -> None:
    generate(
        settings,
        "zoo/noise-8@1.0.0",
        2,
        tmp_path / "dark",
        device="cpu",
        args={"brightness": "20"},
        progress=False,
    )
    with Image.open(tmp_path / "dark" / "000000.png") as image:
        assert float(np.asarray(image).mean()) < 60
    with pytest.raises(BadRequestError, match="no generation argument 'contrast'"):
        generate(
            settings,
            "zoo/noise-8",
            1,
            tmp_path / "x",
            device="cpu",
            args={"contrast": "2"},
            progress=False,
        )


def test_works_offline_and_with_the_hub_down_once_cached(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any], tmp_path: Path
) -> None:
    generate(settings, "zoo/noise-8", 2, tmp_path / "online", device="cpu", progress=False)
    hub.server.shutdown()
    hub.server.server_close()
    down = generate(settings, "zoo/noise-8", 2, tmp_path / "down", device="cpu", progress=False)
    assert len(down.files) == 2
    offline = ClientSettings(hub_url=hub.url, cache_dir=settings.cache_dir, offline=True)
    result = generate(offline, "zoo/noise-8", 2, tmp_path / "off", device="cpu", progress=False)
    assert _digests(tmp_path / "off") == _digests(tmp_path / "online")
    assert len(result.files) == 2


def test_offline_without_the_package_fails_clearly(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any], tmp_path: Path
) -> None:
    from medigan_client.sync import sync

    sync(settings)
    offline = ClientSettings(hub_url=hub.url, cache_dir=settings.cache_dir, offline=True)
    with pytest.raises(OfflineError, match=re.escape("zoo/noise-8@1.0.0 is not in the cache")):
        generate(offline, "zoo/noise-8", 1, tmp_path / "o", device="cpu", progress=False)


def test_output_that_breaks_the_card_is_refused(
    settings: ClientSettings,
    hub: FakeHub,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    zip_package: Callable[[Path, Path], Path],
    tmp_path: Path,
) -> None:
    card = make_card(model_id="zoo/wrong-size")
    package = write_package(
        tmp_path / "wrong",
        card,
        init_source="import numpy as np\n"
        "def generate(num_samples, *, seed, device, brightness=0):\n"
        "    return np.zeros((num_samples, 4, 4), dtype=np.uint8)\n",
    )
    hub.publish(card, zip_package(package, tmp_path / "wrong.zip"))
    with pytest.raises(GenerationFailedError, match=re.escape("sample size (4, 4) differs")):
        generate(settings, "zoo/wrong-size", 1, tmp_path / "w", device="cpu", progress=False)


def test_legacy_release_runs_through_the_loader(
    settings: ClientSettings,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
    make_card: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    card = make_card(model_id="medigan/00099_TEST", version="0.0.1", kind="medigan-legacy")
    card["execution"] = {"package_name": "00099_TEST", "model_name": "DCGAN", "extension": ".pt"}
    publish(card)
    result = generate(
        settings, "medigan/00099_TEST", 3, tmp_path / "legacy", device="cpu", progress=False
    )
    assert [p.name for p in result.files] == ["000000.png", "000001.png", "000002.png"]
    with Image.open(result.files[0]) as image:
        assert image.mode == "L"
        assert int(np.asarray(image).min()) >= 135


def test_a_medigan_style_id_names_a_contributed_model_for_generation(
    settings: ClientSettings,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
    make_card: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    publish(make_card(model_id="alice/00102_DCGAN_CONTRIBUTED", version="1.0.0"))
    by_number = generate(settings, "102", 2, tmp_path / "number", progress=False)
    by_name = generate(settings, "00102_DCGAN_CONTRIBUTED", 2, tmp_path / "name", progress=False)
    assert by_number.model_id == by_name.model_id == "alice/00102_DCGAN_CONTRIBUTED"
    assert [p.read_bytes() for p in by_number.files] == [p.read_bytes() for p in by_name.files]


def test_legacy_releases_default_to_medigans_batch_and_v2_to_sixteen(
    settings: ClientSettings,
    publish: Callable[[dict[str, Any]], dict[str, Any]],
    make_card: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    legacy = make_card(model_id="medigan/00098_TEST", version="0.0.1", kind="medigan-legacy")
    legacy["execution"] = {"package_name": "00098_TEST", "model_name": "DCGAN", "extension": ".pt"}
    publish(legacy)
    publish(make_card(model_id="demo/noise", version="1.0.0"))
    runs = {
        model: generate(settings, model, 2, tmp_path / model.replace("/", "-"), progress=False)
        for model in ("medigan/00098_TEST", "demo/noise")
    }
    recorded = {
        model: {
            json.loads(line)["batch_size"]
            for line in (result.output_dir / "manifest.jsonl").read_text().splitlines()
        }
        for model, result in runs.items()
    }
    assert recorded == {"medigan/00098_TEST": {32}, "demo/noise": {16}}


def test_batch_seed_is_stable() -> None:
    assert batch_seed(0, 0) == batch_seed(0, 0)
    assert batch_seed(0, 0) != batch_seed(0, 16)
    assert batch_seed(0, 16) != batch_seed(1, 16)
    assert 0 <= batch_seed(2**40, 10**6) < 2**31


# -- helpers for the pipeline tests -----------------------------------------------------------


def _local_package(
    tmp_path: Path,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    *,
    name: str = "zoo/noise-8",
    init_source: str | None = None,
    **card_changes: Any,
) -> tuple[Card, Path]:
    card = make_card(model_id=name)
    card["runtime"].update(card_changes.pop("runtime", {}))
    card.update(card_changes)
    directory = write_package(
        tmp_path / "pkg" / name.replace("/", "_"), card, init_source=init_source
    )
    return card_from_json(card), directory


def _files(directory: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted(directory.iterdir())
        if p.is_file() and p.name != MANIFEST_NAME
    }


def _manifest(directory: Path) -> list[dict[str, Any]]:
    text = (directory / MANIFEST_NAME).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


class _WrappedRunner:
    """A runner around a real one that reports each call and may add masks, labels, seeds."""

    isolation = "inprocess"

    def __init__(
        self,
        inner: Runner,
        on_call: Callable[[int], None] = lambda _count: None,
        *,
        per_sample_seeds: bool = False,
        companions: bool = False,
    ):
        self.inner = inner
        self.on_call = on_call
        self.per_sample_seeds = per_sample_seeds
        self.companions = companions

    @property
    def supports_sample_seeds(self) -> bool:
        return self.per_sample_seeds

    def generate_batch(
        self,
        num_samples: int,
        *,
        seed: int,
        device: str,
        args: Mapping[str, object],
        sample_seeds: Sequence[int] | None = None,
    ) -> GeneratedBatch:
        self.on_call(num_samples)
        if self.per_sample_seeds:
            assert sample_seeds is not None and len(sample_seeds) == num_samples
            images = np.stack(
                [
                    np.random.default_rng(s).integers(0, 256, (8, 8), dtype=np.uint8)
                    for s in sample_seeds
                ]
            )
            return GeneratedBatch(images=images)
        batch = self.inner.generate_batch(num_samples, seed=seed, device=device, args=args)
        if not self.companions:
            return batch
        images = batch.images
        return GeneratedBatch(
            images=images,
            masks=images > 128,
            labels=np.arange(num_samples) % 2,
            extras={"latent": np.full((num_samples, 3), seed % 1000, dtype=np.float32)},
        )

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> _WrappedRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wrap_runner(monkeypatch: pytest.MonkeyPatch, **options: Any) -> list[dict[str, Any]]:
    """Make generate use :class:`_WrappedRunner`; returns the log of open_runner calls."""
    opened: list[dict[str, Any]] = []

    def fake_open_runner(package_dir: Path, card: Card, **kwargs: Any) -> Runner:
        opened.append(kwargs)
        return _WrappedRunner(open_runner(package_dir, card), **options)

    monkeypatch.setattr(generate_module, "open_runner", fake_open_runner)
    return opened


class _WrappedWriter(SampleWriter):
    """A writer that delegates to a real one, after ``before_write(index)`` returns."""

    def __init__(self, inner: SampleWriter, before_write: Callable[[int, Path], None]):
        super().__init__(inner.card, inner.provenance)
        self.inner = inner
        self.format = inner.format  # type: ignore[misc]
        self.before_write = before_write

    def write(
        self, array: np.ndarray, stem: Path, record: Mapping[str, object], *, role: Role = "image"
    ) -> WrittenFile:
        index = record["index"]
        assert isinstance(index, int)
        self.before_write(index, stem)
        return self.inner.write(array, stem, record, role=role)


def _wrap_writer(
    monkeypatch: pytest.MonkeyPatch, before_write: Callable[[int, Path], None]
) -> None:
    real_writer_for = generate_module.writer_for

    def fake_writer_for(*args: Any, **kwargs: Any) -> SampleWriter:
        return _WrappedWriter(real_writer_for(*args, **kwargs), before_write)

    monkeypatch.setattr(generate_module, "writer_for", fake_writer_for)


# -- seeding, splitting, resuming -------------------------------------------------------------


def test_a_split_run_writes_the_same_files_as_one_run(
    make_card: Callable[..., dict[str, Any]], write_package: Callable[..., Path], tmp_path: Path
) -> None:
    card, package = _local_package(tmp_path, make_card, write_package)
    common: dict[str, Any] = {"seed": 7, "batch_size": 4, "device": "cpu", "progress": False}
    whole = generate_from_package(card, package, 10, tmp_path / "whole", **common)
    # 5 is not on the grid of 4: both halves generate the batch [4, 8) and keep their part.
    first = generate_from_package(card, package, 5, tmp_path / "first", **common)
    second = generate_from_package(card, package, 5, tmp_path / "second", start_index=5, **common)
    assert [p.name for p in second.files] == [f"{i:06d}.png" for i in range(5, 10)]
    assert {**_files(tmp_path / "first"), **_files(tmp_path / "second")} == _files(
        tmp_path / "whole"
    )
    assert _manifest(tmp_path / "first") + _manifest(tmp_path / "second") == _manifest(
        tmp_path / "whole"
    )
    assert (whole.count, first.start_index, second.start_index) == (10, 0, 5)
    assert whole.file_for(9) == tmp_path / "whole" / "000009.png"


def test_per_sample_seeds_make_images_independent_of_the_batch_size(
    monkeypatch: pytest.MonkeyPatch,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    card, package = _local_package(tmp_path, make_card, write_package)
    generated: list[int] = []
    monkeypatch.setattr(
        generate_module,
        "open_runner",
        lambda directory, card, **_: _WrappedRunner(
            open_runner(directory, card), generated.append, per_sample_seeds=True
        ),
    )
    common: dict[str, Any] = {"seed": 3, "device": "cpu", "progress": False}
    generate_from_package(card, package, 7, tmp_path / "three", batch_size=3, **common)
    generate_from_package(card, package, 7, tmp_path / "five", batch_size=5, **common)
    assert _files(tmp_path / "three") == _files(tmp_path / "five")
    lines = _manifest(tmp_path / "three")
    assert [line["sample_seed"] for line in lines] == [sample_seed(3, i) for i in range(7)]
    # Off the grid the whole grid batches are generated, so each image is computed in the same
    # batch composition as in a full run (bit-identical even where batching changes float sums).
    generated.clear()
    generate_from_package(
        card, package, 4, tmp_path / "part", batch_size=3, start_index=2, **common
    )
    assert generated == [3, 3]
    assert _files(tmp_path / "part") == {
        name: data
        for name, data in _files(tmp_path / "three").items()
        if name in _files(tmp_path / "part")
    }


def test_plan_batches_covers_exactly_the_range_on_the_grid() -> None:
    plans = list(plan_batches(1, 4, 5, 11))
    assert [(p.grid_start, p.first, p.stop, p.generate_count, p.keep_offset) for p in plans] == [
        (4, 5, 8, 4, 1),
        (8, 8, 11, 4, 0),
    ]
    assert plans[0].batch_seed == batch_seed(1, 4)
    per_sample = list(plan_batches(1, 4, 5, 11, per_sample_seeds=True))
    assert [(p.generate_count, p.keep_offset) for p in per_sample] == [(4, 1), (4, 0)]
    assert per_sample[1].sample_seeds == tuple(sample_seed(1, i) for i in (8, 9, 10, 11))


def test_a_writer_error_stops_cleanly_and_resume_finishes_the_run(
    monkeypatch: pytest.MonkeyPatch,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    card, package = _local_package(tmp_path, make_card, write_package)
    common: dict[str, Any] = {"seed": 2, "batch_size": 4, "device": "cpu", "progress": False}
    generate_from_package(card, package, 20, tmp_path / "reference", **common)

    def fail_at_nine(index: int, stem: Path) -> None:
        if index == 9:

            def half_write(path: Path) -> None:
                path.write_bytes(b"\x89PNG\r\n")
                raise OSError("disk full")

            write_atomically(stem.with_name(stem.name + ".png"), half_write)

    _wrap_writer(monkeypatch, fail_at_nine)
    out = tmp_path / "out"
    with pytest.raises(GenerationFailedError, match=r"writing sample 9 to .* OSError: disk full"):
        generate_from_package(card, package, 20, out, workers=2, **common)
    assert not list(out.glob(".*.tmp"))
    assert not (out / "000009.png").exists()
    lines = _manifest(out)
    done = len(lines)
    assert [line["index"] for line in lines] == list(range(done))
    assert done % 4 == 0 and done <= 8
    reference = _files(tmp_path / "reference")
    for line in lines:
        assert (out / line["file"]).read_bytes() == reference[line["file"]]

    monkeypatch.undo()
    calls: list[int] = []
    _wrap_runner_calls = calls.append
    monkeypatch.setattr(
        generate_module,
        "open_runner",
        lambda directory, card, **_: _WrappedRunner(
            open_runner(directory, card), _wrap_runner_calls
        ),
    )
    result = generate_from_package(card, package, 20, out, resume=True, **common)
    assert len(calls) == (20 - done) // 4
    assert (result.count, result.generated) == (20, 20 - done)
    assert _files(out) == reference
    assert _manifest(out) == _manifest(tmp_path / "reference")

    calls.clear()
    again = generate_from_package(card, package, 20, out, resume=True, **common)
    assert (again.generated, calls) == (0, [])


def test_resume_ignores_a_cut_off_line_and_refuses_other_parameters(
    make_card: Callable[..., dict[str, Any]], write_package: Callable[..., Path], tmp_path: Path
) -> None:
    card, package = _local_package(tmp_path, make_card, write_package)
    common: dict[str, Any] = {"batch_size": 2, "device": "cpu", "progress": False}
    out = tmp_path / "out"
    generate_from_package(card, package, 4, out, seed=1, **common)
    generate_from_package(card, package, 6, tmp_path / "reference", seed=1, **common)
    manifest = out / MANIFEST_NAME
    with manifest.open("a", encoding="utf-8") as handle:
        handle.write('{"file": "000004.png", "mod')
    result = generate_from_package(card, package, 6, out, seed=1, resume=True, **common)
    assert result.generated == 2
    assert _manifest(out) == _manifest(tmp_path / "reference")
    with pytest.raises(BadRequestError, match="written with seed 1, this run has 2"):
        generate_from_package(card, package, 8, out, seed=2, resume=True, **common)
    with pytest.raises(BadRequestError, match="starts at sample 0, this run at 2"):
        generate_from_package(card, package, 8, out, seed=1, start_index=2, resume=True, **common)
    with pytest.raises(BadRequestError, match=r"lists '000000.png', this run writes .npy files"):
        generate_from_package(card, package, 8, out, seed=1, resume=True, format="npy", **common)
    with pytest.raises(BadRequestError, match="written with batch_size 2, this run has 3"):
        generate_from_package(
            card, package, 8, out, seed=1, resume=True, batch_size=3, device="cpu"
        )


def test_writing_ahead_is_bounded_while_writers_are_blocked(
    monkeypatch: pytest.MonkeyPatch,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    card, package = _local_package(tmp_path, make_card, write_package)
    gate = threading.Event()
    lock = threading.Lock()
    written: list[int] = []
    written_when_called: list[int] = []

    def blocked_until_released(index: int, stem: Path) -> None:
        assert gate.wait(timeout=60), "the test never released the writers"
        with lock:
            written.append(index)

    def on_call(_count: int) -> None:
        with lock:
            written_when_called.append(len(written))

    _wrap_writer(monkeypatch, blocked_until_released)
    monkeypatch.setattr(
        generate_module,
        "open_runner",
        lambda directory, card, **_: _WrappedRunner(open_runner(directory, card), on_call),
    )
    failures: list[BaseException] = []

    def run() -> None:
        try:
            generate_from_package(
                card,
                package,
                40,
                tmp_path / "out",
                batch_size=2,
                device="cpu",
                progress=False,
                workers=1,
                max_in_flight=2,
            )
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while len(written_when_called) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    thread.join(timeout=120)
    assert not thread.is_alive() and not failures
    # Two batches queued for the blocked writers plus the one generated while waiting for
    # a free slot: the model never ran further ahead of the disk.
    assert written_when_called.count(0) == 3
    assert len(written_when_called) == 20
    assert len(list((tmp_path / "out").glob("*.png"))) == 40


def test_result_holds_no_list_of_files(
    make_card: Callable[..., dict[str, Any]], write_package: Callable[..., Path], tmp_path: Path
) -> None:
    card, package = _local_package(tmp_path, make_card, write_package)
    result = generate_from_package(card, package, 3, tmp_path / "o", device="cpu", progress=False)
    assert not any(isinstance(value, list) for value in vars(result).values())
    assert list(result.iter_files()) == result.files == sorted((tmp_path / "o").glob("*.png"))
    with pytest.raises(IndexError):
        result.file_for(3)


# -- formats, masks, options ------------------------------------------------------------------


def test_npy_nifti_and_dicom_hold_the_png_pixels(
    make_card: Callable[..., dict[str, Any]], write_package: Callable[..., Path], tmp_path: Path
) -> None:
    import nibabel
    import pydicom

    card, package = _local_package(tmp_path, make_card, write_package)
    common: dict[str, Any] = {"seed": 5, "batch_size": 2, "device": "cpu", "progress": False}
    results = {
        fmt: generate_from_package(card, package, 3, tmp_path / fmt, format=fmt, **common)
        for fmt in ("png", "npy", "nifti", "dicom")
    }
    for index in range(3):
        with Image.open(results["png"].file_for(index)) as image:
            expected = np.asarray(image)
        assert np.array_equal(np.load(results["npy"].file_for(index)), expected)
        volume = nibabel.load(results["nifti"].file_for(index))
        assert np.array_equal(np.asarray(volume.dataobj), expected)
        dataset = pydicom.dcmread(results["dicom"].file_for(index))
        assert np.array_equal(dataset.pixel_array, expected)
        assert dataset.InstanceNumber == index + 1
    assert results["nifti"].extension == ".nii.gz"
    lines = _manifest(tmp_path / "dicom")
    assert [line["file"] for line in lines] == ["000000.dcm", "000001.dcm", "000002.dcm"]
    uids = [line["dicom"]["sop_instance_uid"] for line in lines]
    assert len(set(uids)) == 3
    assert len({line["dicom"]["series_instance_uid"] for line in lines}) == 1


def test_a_resumed_dicom_run_stays_in_its_series(
    make_card: Callable[..., dict[str, Any]], write_package: Callable[..., Path], tmp_path: Path
) -> None:
    import pydicom

    card, package = _local_package(tmp_path, make_card, write_package)
    common: dict[str, Any] = {
        "batch_size": 2,
        "device": "cpu",
        "progress": False,
        "format": "dicom",
    }
    out = tmp_path / "out"
    generate_from_package(card, package, 2, out, dicom_uid_root="1.2.3.4", **common)
    generate_from_package(card, package, 4, out, resume=True, dicom_uid_root="1.2.3.4", **common)
    datasets = [pydicom.dcmread(out / f"{i:06d}.dcm") for i in range(4)]
    assert len({d.SeriesInstanceUID for d in datasets}) == 1
    assert len({d.StudyInstanceUID for d in datasets}) == 1
    assert len({d.SOPInstanceUID for d in datasets}) == 4
    assert all(d.SOPInstanceUID.startswith("1.2.3.4.") for d in datasets)


def test_masks_labels_and_extras_are_written_next_to_the_images(
    monkeypatch: pytest.MonkeyPatch,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    card, package = _local_package(tmp_path, make_card, write_package)
    _wrap_runner(monkeypatch, companions=True)
    out = tmp_path / "out"
    generate_from_package(card, package, 3, out, batch_size=2, device="cpu", progress=False)
    lines = _manifest(out)
    assert [line["label"] for line in lines] == [0, 1, 0]
    assert [line["mask"] for line in lines] == [f"{i:06d}_mask.png" for i in range(3)]
    with Image.open(out / "000001.png") as image:
        pixels = np.asarray(image)
    with Image.open(out / "000001_mask.png") as mask:
        assert np.array_equal(np.asarray(mask), np.where(pixels > 128, 255, 0))
    assert lines[2]["extras"] == {"latent": "000002_latent.npy"}
    assert np.load(out / "000002_latent.npy").tolist() == [float(batch_seed(0, 2) % 1000)] * 3


def test_half_precision_only_where_the_card_allows_it(
    make_card: Callable[..., dict[str, Any]], write_package: Callable[..., Path], tmp_path: Path
) -> None:
    source = (
        "import numpy as np\n"
        "def generate(num_samples, *, seed, device, brightness=0, precision='float32'):\n"
        "    value = 200 if precision == 'float16' else 50\n"
        "    return np.full((num_samples, 8, 8), value, dtype=np.uint8)\n"
    )
    allowed, package = _local_package(
        tmp_path,
        make_card,
        write_package,
        name="zoo/half",
        init_source=source,
        runtime={"half_precision": True},
    )
    out = tmp_path / "half"
    generate_from_package(allowed, package, 1, out, half=True, device="cpu", progress=False)
    with Image.open(out / "000000.png") as image:
        assert int(np.asarray(image).max()) == 200
    assert _manifest(out)[0]["precision"] == "float16"
    refused, package = _local_package(
        tmp_path, make_card, write_package, name="zoo/full", init_source=source
    )
    with pytest.raises(BadRequestError, match="does not allow half precision"):
        generate_from_package(refused, package, 1, tmp_path / "full", half=True, device="cpu")


def test_isolation_passes_through_and_bad_options_are_refused(
    monkeypatch: pytest.MonkeyPatch,
    make_card: Callable[..., dict[str, Any]],
    write_package: Callable[..., Path],
    tmp_path: Path,
) -> None:
    card, package = _local_package(tmp_path, make_card, write_package)
    opened = _wrap_runner(monkeypatch)
    generate_from_package(
        card, package, 1, tmp_path / "o", isolation="process", device="cpu", progress=False
    )
    assert opened[0]["isolation"] == "process"
    for options, message in [
        ({"isolation": "docker"}, "isolation must be one of"),
        ({"format": "jpeg"}, "format must be one of png, npy, nifti, dicom"),
        ({"start_index": -1}, "start_index must not be negative"),
        ({"workers": 0}, "workers must be at least 1"),
        ({"format": "dicom", "dicom_uid_root": "1.02.x"}, "is not a DICOM UID root"),
    ]:
        with pytest.raises(BadRequestError, match=message):
            generate_from_package(card, package, 1, tmp_path / "bad", device="cpu", **options)
    assert len(opened) == 1


def test_the_generate_command_takes_format_start_index_and_resume(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    hub: FakeHub,
    published: dict[str, Any],
    tmp_path: Path,
) -> None:
    from medigan_client.cli import main

    monkeypatch.setenv("MEDIGAN_CONFIG", str(tmp_path / "no-config.toml"))
    out = tmp_path / "out"
    base = ["--hub", hub.url, "--cache-dir", str(tmp_path / "c"), "generate", "zoo/noise-8"]
    options = ["-o", str(out), "--format", "npy", "--start-index", "5", "--device", "cpu"]
    assert main([*base, "-n", "2", *options, "--workers", "1", "--isolation", "inprocess"]) == 0
    assert "wrote 2 images of zoo/noise-8@1.0.0" in capsys.readouterr().out
    assert main([*base, "-n", "3", *options, "--resume"]) == 0
    assert "wrote 1 images of zoo/noise-8@1.0.0" in capsys.readouterr().out
    assert sorted(p.name for p in out.glob("*.npy")) == ["000005.npy", "000006.npy", "000007.npy"]
    assert main([*base, "-n", "1", *options, "--half"]) == 1
    assert "does not allow half precision" in capsys.readouterr().err


def test_a_folder_that_holds_files_is_refused_before_any_download(
    settings: ClientSettings, hub: FakeHub, published: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputExistsError) as info:
        generate(settings, "zoo/noise-8", 2, out, device="cpu", progress=False)
    assert info.value.code.value == "bad_request"
    assert info.value.detail == {
        "reason": "output_not_empty",
        "output_dir": str(out),
        "files": ["notes.txt"],
    }
    assert info.value.message.startswith(f"the output folder {out} is not empty")
    assert hub.state.requests_to("/api/v1/models") == [], "nothing was downloaded"
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_overwrite_removes_exactly_the_previous_runs_files(
    make_card: Callable[..., dict[str, Any]], write_package: Callable[..., Path], tmp_path: Path
) -> None:
    card, package = _local_package(tmp_path, make_card, write_package)
    out = tmp_path / "out"
    options: dict[str, Any] = {"device": "cpu", "isolation": "inprocess", "progress": False}
    generate_from_package(card, package, 4, out, seed=1, **options)
    # What an interrupted write of a listed file leaves behind is the run's too.
    (out / ".000003.png.123-456.tmp").write_bytes(b"partial")
    with pytest.raises(OutputExistsError):
        generate_from_package(card, package, 2, out, seed=2, **options)

    result = generate_from_package(card, package, 2, out, seed=2, overwrite=True, **options)

    assert result.removed == 6  # four images, the temporary file and the manifest
    assert sorted(p.name for p in out.iterdir()) == ["000000.png", "000001.png", MANIFEST_NAME]
    lines = [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]
    assert [(line["index"], line["seed"]) for line in lines] == [(0, 2), (1, 2)]


def test_overwrite_never_removes_files_its_manifest_does_not_list(
    make_card: Callable[..., dict[str, Any]], write_package: Callable[..., Path], tmp_path: Path
) -> None:
    card, package = _local_package(tmp_path, make_card, write_package)
    out = tmp_path / "out"
    options: dict[str, Any] = {"device": "cpu", "isolation": "inprocess", "progress": False}
    generate_from_package(card, package, 2, out, **options)
    (out / "labels.csv").write_text("0,1\n", encoding="utf-8")
    (out / "nested").mkdir()
    before = sorted(p.name for p in out.iterdir())

    with pytest.raises(OutputExistsError, match=r"files its manifest\.jsonl does not list") as info:
        generate_from_package(card, package, 2, out, overwrite=True, **options)
    assert info.value.detail == {
        "reason": "output_not_empty",
        "output_dir": str(out),
        "files": ["labels.csv", "nested"],
    }
    assert sorted(p.name for p in out.iterdir()) == before

    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "000000.png").write_bytes(b"not ours to judge")
    with pytest.raises(OutputExistsError, match=r"it has no manifest\.jsonl"):
        generate_from_package(card, package, 1, bare, overwrite=True, **options)
    assert (bare / "000000.png").read_bytes() == b"not ours to judge"


def test_resume_and_overwrite_exclude_each_other() -> None:
    with pytest.raises(BadRequestError, match="resume and overwrite exclude each other"):
        GenerationOptions(resume=True, overwrite=True)
