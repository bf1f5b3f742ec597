"""A medigan-legacy package of medigan's DCGAN 128 template, called as medigan 1.0.0 calls it.

``generate(model_file, num_samples, output_path, save_images)`` does per call what the
template's ``generate`` does: it builds the network, loads ``model_file`` (a ``torch.save`` of
``{"generator": state_dict}``) with ``torch.load``, draws the latents from torch's global
generator and runs the network without ``no_grad``; then it saves ``<i>.png`` files into
``output_path`` (``save_images=True``, returning nothing) or returns a list of (128, 128, 1)
uint8 arrays. The template writes its files with OpenCV, which is not installed beside medigan
here; Pillow writes them instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .network import LATENT_SIZE, Generator, to_uint8


def generate(model_file: str, num_samples: int, output_path: str, save_images: bool = False):  # type: ignore[no-untyped-def]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    network = Generator().to(device)
    checkpoint = torch.load(model_file, map_location=device)
    network.load_state_dict(checkpoint["generator"])
    network.eval()
    latents = torch.randn(num_samples, LATENT_SIZE, 1, 1, device=device)
    images = to_uint8(network(latents).detach())
    if not save_images:
        return [image[:, :, np.newaxis] for image in images]
    folder = Path(output_path)
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{index}.png")
    return None
