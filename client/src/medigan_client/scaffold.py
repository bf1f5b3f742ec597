"""Start a model package: ``medigan-client init-package DIR`` writes a v2 skeleton that runs.

:func:`init_package` writes four files into a folder:

- ``__init__.py``: a tiny torch generator (a linear projection of a latent to a 4x4 feature map,
  resized to the image size, two 3x3 convolutions, tanh) and the v2 entry point
  ``generate(num_samples, *, seed, device, truncation=1.0, seeds=None)`` returning uint8 arrays
  of shape ``(N, H, W)`` (one channel) or ``(N, H, W, C)``; it loads its weights with
  :func:`medigan_client.package_support.load_network` and takes per-sample seeds.
- ``weights.safetensors``: weights of that generator drawn from a fixed seed, so two skeletons
  of the same shape have the same bytes; the network's shape is recorded in the file's
  metadata. They are untrained: replace them with trained ones (the README says how).
- ``card.json``: a card that validates against :class:`medigan_catalog.schema.Card` and the
  catalogue's rules (:func:`medigan_catalog.validation.validate_card`), before anything is
  written.
- ``README.md``: what to edit, how to try the package locally, how to push it.

A folder that holds anything is refused unless ``force`` is given; ``force`` replaces those four
files and leaves every other file alone. The templates are code, here: nothing is read from
package data. Writing the weights needs numpy and safetensors (``medigan-client[torch]``), not
torch; running the package needs torch.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medigan_client.errors import BadRequestError, CardInvalidError

INIT_FILE = "__init__.py"
WEIGHTS_FILE = "weights.safetensors"
CARD_FILE = "card.json"
README_FILE = "README.md"
SKELETON_FILES = (INIT_FILE, WEIGHTS_FILE, CARD_FILE, README_FILE)

DEFAULT_NAMESPACE = "my-lab"
DEFAULT_MODALITY = "x-ray"
DEFAULT_IMAGE_SIZE = 64
MAX_IMAGE_SIZE = 1024
LATENT_SIZE = 16
WIDTH = 16
WEIGHTS_SEED = 20260
# The safetensors metadata key under which the weights file records the network's shape.
WEIGHTS_METADATA_KEY = "generator"
TORCH_EXTRA = "medigan-client[torch]"


@dataclass(frozen=True)
class PackageSkeleton:
    """What :func:`init_package` wrote: the folder, the card, and the files."""

    directory: Path
    model_id: str
    image_size: int
    channels: int
    files: tuple[Path, ...]


def default_model_id(directory: Path) -> str:
    """``my-lab/<the folder's name>``, with characters a model name cannot hold replaced."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", directory.resolve().name).strip("-._")
    return f"{DEFAULT_NAMESPACE}/{name or 'my-model'}"


def skeleton_card(
    model_id: str, *, modality: str, image_size: int, channels: int = 1
) -> dict[str, Any]:
    """The card of a skeleton package, as JSON values (checked by :func:`init_package`)."""
    name = model_id.partition("/")[2]
    title = f"{name}: a {image_size}x{image_size} {modality} generator (untrained skeleton)"
    return {
        "schema_version": "1.0",
        "model_id": model_id,
        "version": "0.1.0",
        "runtime": {
            "kind": "v2",
            "entry_point": "generate",
            "python_requires": ">=3.10",
            "dependencies": ["torch>=2.1", "numpy>=1.26", "safetensors>=0.4"],
        },
        "generation_arguments": [
            {
                "name": "truncation",
                "type": "float",
                "default": 1.0,
                "choices": None,
                "minimum": 0.0,
                "maximum": 2.0,
                "help": "Multiplies the latent vectors: below 1.0 samples are more typical, "
                "above 1.0 more varied.",
            }
        ],
        "output": {
            "height": image_size,
            "width": image_size,
            "depth": None,
            "channels": channels,
            "dtype": "uint8",
            "value_range": [0, 255],
        },
        "artifacts": [],
        "provenance": {
            "authors": ["Replace with the authors' names"],
            "licence": "MIT",
            "dois": [],
            "training_data": [],
            "privacy_measures": "Untrained skeleton: its weights were drawn at random and have "
            "seen no data. Describe the training data's de-identification here once trained.",
        },
        "selection": {
            "modality": [modality],
            "type": "template",
            "tags": ["skeleton", f"{image_size}x{image_size}"],
            "performance": {},
        },
        "description": {
            "title": title,
            "comment": "Made by medigan-client init-package: random weights, to be replaced "
            "by trained ones before the package is shared.",
        },
    }


def _check_card(data: dict[str, Any]) -> None:
    from medigan_catalog.errors import CardInvalidError as CatalogCardInvalidError
    from medigan_catalog.validation import validate_card

    try:
        validate_card(data)
    except CatalogCardInvalidError as exc:
        raise CardInvalidError(f"the skeleton's card is invalid: {exc.message}") from exc


def write_weights(path: Path, *, image_size: int, channels: int = 1) -> Path:
    """Write the skeleton generator's weights, drawn from :data:`WEIGHTS_SEED`, to ``path``.

    The tensors and their order depend only on the shape, so the file's bytes do too.
    """
    try:
        import numpy as np
        from safetensors.numpy import save_file
    except ImportError as exc:
        raise BadRequestError(
            f"writing the skeleton's weights needs safetensors: pip install '{TORCH_EXTRA}'"
        ) from exc
    rng = np.random.default_rng(WEIGHTS_SEED)

    def draw(*shape: int, fan_in: int) -> Any:
        # He-style scale, so that the untrained network's output is not flat grey.
        return (rng.standard_normal(shape) * (2.0 / fan_in) ** 0.5).astype(np.float32)

    tensors = {
        "project.weight": draw(WIDTH * 16, LATENT_SIZE, fan_in=LATENT_SIZE),
        "project.bias": np.zeros(WIDTH * 16, dtype=np.float32),
        "conv1.weight": draw(WIDTH, WIDTH, 3, 3, fan_in=WIDTH * 9),
        "conv1.bias": np.zeros(WIDTH, dtype=np.float32),
        "conv2.weight": draw(channels, WIDTH, 3, 3, fan_in=WIDTH * 9),
        "conv2.bias": np.zeros(channels, dtype=np.float32),
    }
    shape = {
        "latent_size": LATENT_SIZE,
        "width": WIDTH,
        "image_size": image_size,
        "channels": channels,
    }
    save_file(tensors, str(path), metadata={WEIGHTS_METADATA_KEY: json.dumps(shape)})
    path.chmod(0o644)  # safetensors creates the file private; the package is meant to be shared
    return path


_INIT_TEMPLATE = '''\
"""v2 package of {model_id}: a tiny generator of {size}x{size} images ({modality}).

Made by ``medigan-client init-package``; its weights are random until you train it. The client
calls ``generate(num_samples, *, seed, device, **args)`` and owns batching, seeding, saving and
file formats; ``generate`` returns uint8 arrays of shape {shape_text}.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medigan_client.package_support import check_sample_seeds, load_network

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights.safetensors"
WEIGHTS_METADATA_KEY = "{metadata_key}"
LATENT_SIZE = {latent_size}


class Generator(nn.Module):
    """A latent (N, latent_size) to an image (N, channels, size, size) in [-1, 1]."""

    def __init__(self, latent_size: int, width: int, image_size: int, channels: int) -> None:
        super().__init__()
        self.width = width
        self.project = nn.Linear(latent_size, width * 16)
        self.resize = nn.Upsample(
            size=(image_size, image_size), mode="bilinear", align_corners=False
        )
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).reshape(z.shape[0], self.width, 4, 4)
        x = torch.relu(self.conv1(self.resize(x)))
        return torch.tanh(self.conv2(x))


def _build(shape: Mapping[str, Any]) -> Generator:
    return Generator(
        latent_size=int(shape["latent_size"]),
        width=int(shape["width"]),
        image_size=int(shape["image_size"]),
        channels=int(shape["channels"]),
    )


def _latents(num_samples: int, seed: int, seeds: Sequence[int] | None) -> torch.Tensor:
    # Drawn on the CPU, so that the images do not depend on the device the network runs on.
    if seeds is None:
        rng = torch.Generator(device="cpu").manual_seed(seed)
        return torch.randn(num_samples, LATENT_SIZE, generator=rng)
    rows = [
        torch.randn(1, LATENT_SIZE, generator=torch.Generator(device="cpu").manual_seed(s))
        for s in check_sample_seeds(seeds, num_samples)
    ]
    return torch.cat(rows) if rows else torch.empty(0, LATENT_SIZE)


def generate(
    num_samples: int,
    *,
    seed: int,
    device: str = "cpu",
    truncation: float = 1.0,
    seeds: Sequence[int] | None = None,
) -> np.ndarray:
    """``num_samples`` images as uint8, the same for the same ``(num_samples, seed)``.

    ``seeds`` (one int per sample, passed by the client when it asks for per-sample seeds)
    makes image k depend on ``seeds[k]`` alone.
    """
    net = load_network(WEIGHTS_PATH, _build, device=device, metadata_key=WEIGHTS_METADATA_KEY)
    target = next(net.parameters()).device
    latents = _latents(num_samples, seed, seeds) * truncation
    with torch.inference_mode():
        images = net(latents.to(target))
    pixels = ((images.float() + 1.0) * 127.5).round().clamp(0, 255).to("cpu", torch.uint8)
    array: np.ndarray = pixels.permute(0, 2, 3, 1).numpy()
    return array[..., 0] if array.shape[-1] == 1 else array
'''

_README_TEMPLATE = """\
# {model_id}

A v2 model package made by `medigan-client init-package`: a tiny generator of {size}x{size}
{modality} images whose weights are **random** (drawn from a fixed seed, so the same skeleton
always has the same bytes). It runs and passes the hub's checks, but generates noise-like
patterns until you put trained weights in.

- `__init__.py`: the network and
  `generate(num_samples, *, seed, device, truncation=1.0, seeds=None)`, which returns uint8
  arrays of shape {shape_text}.
- `weights.safetensors`: the network's weights; the safetensors metadata key
  `{metadata_key}` records the network's shape.
- `card.json`: the card: what the package is, its output, licence, authors and training data.

## Make it yours

1. Train the `Generator` in `__init__.py` (or replace it with your own network; keep
   `generate`'s signature and its return type), then save its weights:

   ```python
   import json
   from safetensors.torch import save_file

   shape = {{"latent_size": {latent_size}, "width": {width},
            "image_size": {size}, "channels": {channels}}}
   save_file(generator.state_dict(), "weights.safetensors",
             metadata={{"{metadata_key}": json.dumps(shape)}})
   ```

2. Edit `card.json`: `model_id` (a namespace you may push to), `provenance.authors`,
   `provenance.licence`, `provenance.training_data` (each data set with its licence),
   `provenance.privacy_measures`, `selection` and `description`. `docs/model-card.md` of the
   hub lists every field.

## Try it locally

```python
from pathlib import Path

from medigan_client.generate import GenerationOptions, generate_from_package
from medigan_client.push import read_package_card

card, _ = read_package_card(Path("{directory}"))
generate_from_package(card, Path("{directory}"), 8, Path("samples"),
                      GenerationOptions(device="cpu", isolation="inprocess"))
```

## Share it

```bash
medigan-client push {directory}
```

`push` validates the card, runs a smoke generation in a child process, zips the folder
deterministically and uploads it; the hub then validates, reviews and publishes it.
"""


def _render(template: str, values: dict[str, object]) -> str:
    return template.format(**values)


def init_package(
    directory: Path | str,
    *,
    model_id: str | None = None,
    modality: str = DEFAULT_MODALITY,
    image_size: int = DEFAULT_IMAGE_SIZE,
    channels: int = 1,
    force: bool = False,
) -> PackageSkeleton:
    """Write a working v2 package skeleton into ``directory`` (created when missing).

    ``model_id`` defaults to :func:`default_model_id`; ``channels`` is 1 (grey) or 3 (RGB). The
    card is validated before anything is written. A folder that holds anything raises
    ``BadRequestError`` unless ``force``, which replaces the skeleton's four files and keeps
    every other file.
    """
    folder = Path(directory)
    if isinstance(image_size, bool) or not 4 <= image_size <= MAX_IMAGE_SIZE:
        raise BadRequestError(f"image size must be 4 to {MAX_IMAGE_SIZE} pixels, not {image_size}")
    if channels not in (1, 3):
        raise BadRequestError(f"channels must be 1 or 3, not {channels}")
    if not modality.strip():
        raise BadRequestError("the modality must not be empty")
    if folder.exists() and not folder.is_dir():
        raise BadRequestError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise BadRequestError(
            f"{folder} is not empty; choose a new folder, or pass --force to replace the "
            f"skeleton's files ({', '.join(SKELETON_FILES)}) and keep the others"
        )
    chosen_id = model_id or default_model_id(folder)
    card = skeleton_card(
        chosen_id, modality=modality.strip(), image_size=image_size, channels=channels
    )
    _check_card(card)

    shape_text = (
        f"(N, {image_size}, {image_size})"
        if channels == 1
        else f"(N, {image_size}, {image_size}, {channels})"
    )
    values: dict[str, object] = {
        "model_id": chosen_id,
        "size": image_size,
        "modality": modality.strip(),
        "shape_text": shape_text,
        "metadata_key": WEIGHTS_METADATA_KEY,
        "latent_size": LATENT_SIZE,
        "width": WIDTH,
        "channels": channels,
        "directory": folder.as_posix(),
    }
    folder.mkdir(parents=True, exist_ok=True)
    init_path = folder / INIT_FILE
    init_path.write_text(_render(_INIT_TEMPLATE, values), encoding="utf-8")
    weights_path = write_weights(folder / WEIGHTS_FILE, image_size=image_size, channels=channels)
    card_path = folder / CARD_FILE
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    readme_path = folder / README_FILE
    readme_path.write_text(textwrap.dedent(_render(_README_TEMPLATE, values)), encoding="utf-8")
    return PackageSkeleton(
        directory=folder,
        model_id=chosen_id,
        image_size=image_size,
        channels=channels,
        files=(init_path, weights_path, card_path, readme_path),
    )
