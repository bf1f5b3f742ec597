"""End-to-end generation from a published release: PNGs, manifest, determinism, offline."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image

from medigan_client.errors import BadRequestError, GenerationFailedError, OfflineError
from medigan_client.generate import batch_seed, generate
from medigan_client.settings import ClientSettings

if TYPE_CHECKING:
    from conftest import FakeHub


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


def test_batch_seed_is_stable() -> None:
    assert batch_seed(0, 0) == batch_seed(0, 0)
    assert batch_seed(0, 0) != batch_seed(0, 16)
    assert batch_seed(0, 16) != batch_seed(1, 16)
    assert 0 <= batch_seed(2**40, 10**6) < 2**31
