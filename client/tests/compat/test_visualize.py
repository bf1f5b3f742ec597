"""``Generators.visualize`` opens the client's viewer (no NumPy 2 failure), headless here."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from medigan_client.errors import BadRequestError

if TYPE_CHECKING:
    from conftest import MakeGenerators

matplotlib = pytest.importorskip("matplotlib", reason="the viewer needs medigan-client[visualize]")
matplotlib.use("Agg")


def test_readme_visualize_builds_the_viewer_of_the_model(
    images_model: str, make_generators: MakeGenerators, tmp_path: Path
) -> None:
    import matplotlib.pyplot as plt

    # README: generators.visualize(10); auto_close keeps the window from blocking a test.
    viewer = make_generators(seed=1).visualize(901, auto_close=True)
    try:
        assert viewer.card.model_id == f"medigan/{images_model}"
        shown = np.asarray(viewer.image_artist.get_array())
        assert shown.shape[:2] == (16, 16)
        assert "brightness" in {*viewer.sliders, *viewer.text_boxes}
    finally:
        plt.close(viewer.figure)


def test_local_models_have_no_viewer(make_generators: MakeGenerators, tmp_path: Path) -> None:
    generators = make_generators()
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import numpy as np\n"
        "def generate(model_file, num_samples, output_path, save_images):\n"
        "    return [np.zeros((4, 4), 'uint8')] * num_samples\n"
    )
    (package / "w.pt").write_text("0")
    entry = {
        "execution": {
            "package_name": "pkg",
            "package_link": str(package),
            "model_name": "w",
            "extension": ".pt",
            "image_size": [4, 4],
            "dependencies": [],
            "generate_method": {
                "name": "generate",
                "args": {
                    "base": ["model_file", "num_samples", "output_path", "save_images"],
                    "custom": {},
                },
            },
        },
        "selection": {},
        "description": {},
    }
    assert generators.add_model_to_config("00300_LOCAL_VIEWER", {"00300_LOCAL_VIEWER": entry})
    with pytest.raises(BadRequestError, match="local model"):
        generators.visualize("00300_LOCAL_VIEWER", auto_close=True)
