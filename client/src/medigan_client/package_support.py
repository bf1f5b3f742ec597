"""What v2 model packages share: the device rules, cached network loading and per-sample seeds.

A package's ``generate`` always runs under the client: imported in the caller's process, in its
child process or per-release venv, or in the hub's sandbox, and ``medigan_client`` is
importable in each of them (the venv sees the caller's site-packages, the sandbox mounts the
client's sources). So a package imports these functions instead of carrying its own copy, and
every package accepts the devices the client accepts, ``mps`` included::

    from medigan_client.package_support import check_sample_seeds, load_network, torch_device

The client itself never imports this module; torch (and safetensors for :func:`load_network`)
is imported only by the functions that need it, so a numpy-only package can use
:func:`check_sample_seeds` without torch installed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from medigan_client.errors import BadRequestError
from medigan_client.runtime.loader import device_name, resolve_device

if TYPE_CHECKING:
    import torch

__all__ = ["check_device_name", "check_sample_seeds", "load_network", "torch_device"]

SEED_LIMIT = 2**63

NetworkT = TypeVar("NetworkT", bound="torch.nn.Module")

_NETWORKS: dict[tuple[str, str, tuple[str, ...], bool], Any] = {}
_LOCK = threading.Lock()


def check_sample_seeds(seeds: Sequence[int], num_samples: int) -> list[int]:
    """``seeds`` as a list, or :class:`ValueError` unless they are one int in [0, 2**63) each."""
    listed = list(seeds)
    if len(listed) != num_samples or any(
        isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < SEED_LIMIT for v in listed
    ):
        raise ValueError(f"seeds must be {num_samples} ints in [0, 2**63), one per sample")
    return listed


def check_device_name(device: str) -> str:
    """``device`` if the client accepts its name, else :class:`ValueError` (for numpy packages).

    A package that computes on the CPU whatever it is asked still refuses a device the client
    would refuse, and accepts every one it would (``mps`` included).
    """
    try:
        return device_name(device)
    except BadRequestError as error:
        raise ValueError(error.message) from error


def torch_device(device: str) -> torch.device:
    """The ``torch.device`` for ``auto``, ``cpu``, ``cuda[:N]`` or ``mps``, as the client sees it.

    The rules are the client's (:func:`medigan_client.runtime.loader.resolve_device`): ``auto``
    is ``cuda`` where torch sees a GPU, else ``cpu``; a device that is unknown or not available
    here raises :class:`ValueError`. A bare ``cuda`` is pinned to the current GPU's index, so
    that a network cached for it is found again under the same key.
    """
    import torch

    try:
        name = resolve_device(device)
    except BadRequestError as error:
        raise ValueError(error.message) from error
    if name == "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device(name)


def load_network(
    weights_path: Path,
    build: Callable[[Mapping[str, Any]], NetworkT],
    *,
    device: str,
    metadata_key: str,
    exclude: Collection[str] = (),
    channels_last: bool = False,
) -> NetworkT:
    """The network in ``weights_path`` on ``device``, in eval mode, loaded once per device.

    ``build`` makes the untrained network from the shape the weights file records (the JSON
    object under ``metadata_key`` in its safetensors metadata, ``{}`` when absent); the file's
    tensors, less those named in ``exclude`` (kept there for other uses), are loaded into it on
    the CPU and copied into its parameters' dtype, gradients are switched off, and it is moved
    to the device. Later calls for the same file and device return the same object.

    ``channels_last`` stores the network's 4-d weights in channels-last order, which oneDNN's
    convolutions on the CPU run faster (measured in docs/runtimes.md: the DCGAN 128 template
    1.1 to 1.3 times); off by default because it changes the order of float sums, so a package
    whose recorded outputs must stay bit for bit turns it on only after checking them.
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    resolved = torch_device(device)
    key = (
        str(Path(weights_path).resolve()),
        str(resolved),
        tuple(sorted(exclude)),
        channels_last,
    )
    with _LOCK:
        cached = _NETWORKS.get(key)
        if cached is None:
            with safe_open(str(weights_path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            shape = json.loads(metadata.get(metadata_key, "{}"))
            net = build(shape if isinstance(shape, dict) else {})
            tensors = load_file(str(weights_path), device="cpu")
            for name in exclude:
                tensors.pop(name, None)
            net.load_state_dict(tensors)
            net.requires_grad_(False)
            cached = net.to(resolved).eval()
            if channels_last:
                # Module.to takes memory_format (documented), but torch's stubs do not say so.
                cached = cached.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            _NETWORKS[key] = cached
    network: NetworkT = cached
    return network
