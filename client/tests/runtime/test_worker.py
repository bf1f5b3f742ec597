"""The worker: what it imports, how it reads packages' results, and its framing."""

from __future__ import annotations

import ast
import mmap
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from medigan_client.runtime import worker
from medigan_client.runtime.worker import (
    SLOT_ALIGNMENT,
    BatchRequest,
    PackageOutput,
    PackageOutputError,
    PackageSpec,
    SharedSlots,
    accepts_sample_seeds,
    call_package,
    collect_legacy,
    collect_v2,
    read_frame,
    send_output,
    write_frame,
)


def _image(value: int) -> np.ndarray:
    return np.full((4, 4), value, dtype=np.uint8)


def test_the_worker_imports_only_the_standard_library_and_numpy() -> None:
    tree = ast.parse(Path(worker.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "a relative import would need the medigan_client package"
            imported.add((node.module or "").split(".")[0])
    outside = {name for name in imported if name not in sys.stdlib_module_names}
    assert outside == {"numpy"}


def test_sample_seeds_are_detected_by_a_keyword_named_seeds() -> None:
    def with_seeds(num_samples: int, *, seed: int, device: str, seeds: list[int]) -> None: ...

    def without(num_samples: int, *, seed: int, device: str, **args: object) -> None: ...

    assert accepts_sample_seeds(with_seeds, "v2") is True
    assert accepts_sample_seeds(without, "v2") is False
    assert accepts_sample_seeds(with_seeds, "medigan-legacy") is False


def test_v2_results_an_array_a_list_or_a_mapping() -> None:
    stacked = collect_v2([_image(1), _image(2)])
    assert stacked["images"].shape == (2, 4, 4)
    mapped = collect_v2(
        {
            "images": np.zeros((2, 4, 4)),
            "masks": np.ones((2, 4, 4)),
            "labels": ["a", "b"],
            "depth": np.zeros((2, 1)),
        }
    )
    assert sorted(mapped) == ["extra:depth", "images", "labels", "masks"]
    assert mapped["labels"].tolist() == ["a", "b"]
    with pytest.raises(PackageOutputError, match="one entry per sample"):
        collect_v2({"images": np.zeros((2, 4, 4)), "masks": np.zeros((3, 4, 4))})
    with pytest.raises(PackageOutputError, match="expected an array"):
        collect_v2(object())
    with pytest.raises(PackageOutputError, match="Python objects"):
        collect_v2(np.array([{"a": 1}], dtype=object))


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ([_image(1), _image(2)], {"images"}),
        ([(_image(1), _image(9)), (_image(2), _image(9))], {"images", "masks"}),
        (
            [(_image(1), _image(9), np.zeros(3)), (_image(2), _image(9), np.zeros(3))],
            {"images", "masks", "extra:other"},
        ),
        (
            [
                (_image(1), _image(9), np.zeros(3), "benign"),
                (_image(2), _image(9), np.zeros(3), "malign"),
            ],
            {"images", "masks", "extra:other", "labels"},
        ),
        (([_image(1), _image(2)], [_image(9), _image(9)]), {"images", "masks"}),
        ([(_image(1), None), (_image(2), None)], {"images"}),
        ([[_image(1), _image(2)]], {"images"}),
        (np.stack([_image(1), _image(2)]), {"images"}),
    ],
    ids=[
        "list",
        "pairs",
        "triples",
        "quadruples",
        "parallel-lists",
        "missing-masks",
        "nested",
        "array",
    ],
)
def test_legacy_results_in_medigans_shapes(result: object, expected: set[str]) -> None:
    arrays = collect_legacy(result, num_samples=2)
    assert set(arrays) == expected
    assert arrays["images"].shape == (2, 4, 4)
    assert arrays["images"][:, 0, 0].tolist() == [1, 2]
    if "masks" in arrays:
        assert int(arrays["masks"].max()) == 9
    if "labels" in arrays:
        assert arrays["labels"].tolist() == ["benign", "malign"]


def test_legacy_results_that_are_not_samples_fail() -> None:
    with pytest.raises(PackageOutputError, match="expected an array"):
        collect_legacy("images/", num_samples=1)
    with pytest.raises(PackageOutputError, match="different shapes"):
        collect_legacy([np.zeros((2, 2)), np.zeros((3, 3))], num_samples=2)
    with pytest.raises(PackageOutputError, match="at most 4"):
        collect_legacy([(_image(1),) * 5], num_samples=1)
    with pytest.raises(PackageOutputError, match="only some samples"):
        collect_legacy([(_image(1), _image(2)), (_image(3), None)], num_samples=2)


def test_frames_and_arrays_cross_a_pipe_without_pickles() -> None:
    read_fd, write_fd = os.pipe()
    try:
        write_frame(write_fd, {"op": "load", "value": [1, 2]})
        assert read_frame(read_fd) == {"op": "load", "value": [1, 2]}
        images = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
        send_output(
            write_fd, PackageOutput(arrays={"images": images, "labels": np.array(["a", "b"])})
        )
        header = read_frame(read_fd)
        assert header is not None
        assert header["arrays"] == [
            {"name": "images", "dtype": "<f4", "shape": [2, 3, 4]},
            {"name": "labels", "dtype": "<U1", "shape": [2]},
        ]
        raw = os.read(read_fd, images.nbytes)
        assert np.array_equal(np.frombuffer(raw, dtype="<f4").reshape(2, 3, 4), images)
        assert os.read(read_fd, 8) == "ab".encode("utf-32-le")
    finally:
        os.close(read_fd)
        os.close(write_fd)


class _FakeTensor:
    """Quacks like a torch tensor on a GPU: detach().cpu().numpy()."""

    def __init__(self, array: np.ndarray):
        self.array = array

    def detach(self) -> _FakeTensor:
        return self

    def cpu(self) -> _FakeTensor:
        return self

    def numpy(self) -> np.ndarray:
        return self.array


def test_tensors_are_converted_without_importing_torch() -> None:
    arrays = collect_v2(_FakeTensor(np.ones((2, 3, 3), dtype=np.float32)))
    assert arrays["images"].shape == (2, 3, 3)
    pairs = collect_legacy(
        [(_FakeTensor(_image(1)), _FakeTensor(_image(9))) for _ in range(2)], num_samples=2
    )
    assert pairs["masks"].shape == (2, 4, 4)


@pytest.fixture
def memory_file() -> Iterator[int]:
    """An anonymous memory file of 64 KiB, as the process runner lends its child."""
    if not hasattr(os, "memfd_create"):
        pytest.skip("no memory files on this system")
    fd = os.memfd_create("test-slot")
    os.ftruncate(fd, 1 << 16)
    yield fd
    os.close(fd)


def test_arrays_go_into_a_lent_slot_and_only_the_header_through_the_pipe(
    memory_file: int,
) -> None:
    read_fd, write_fd = os.pipe()
    images = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    labels = np.array([1.5, 2.5])
    try:
        send_output(
            write_fd,
            PackageOutput(arrays={"images": images, "labels": labels}),
            SharedSlots([memory_file]),
            {"slot": 0, "slot_size": 1 << 16},
        )
        os.close(write_fd)
        header = read_frame(read_fd)
        assert read_frame(read_fd) is None  # nothing but the header crossed the pipe
    finally:
        os.close(read_fd)
    assert header is not None and header["slot"] == 0
    entries = header["arrays"]
    assert isinstance(entries, list)
    assert [entry["offset"] for entry in entries] == [0, SLOT_ALIGNMENT]
    with mmap.mmap(memory_file, 1 << 16, access=mmap.ACCESS_READ) as shared:
        assert shared[: images.nbytes] == images.tobytes()
        start = SLOT_ALIGNMENT
        assert shared[start : start + labels.nbytes] == labels.tobytes()


def test_arrays_that_do_not_fit_a_slot_go_through_the_pipe_saying_what_they_need(
    memory_file: int,
) -> None:
    read_fd, write_fd = os.pipe()
    images = np.ones((4, 64), dtype=np.float64)
    try:
        for lent in ({"slot": 0, "slot_size": 1024}, {"slot": 3, "slot_size": 1 << 16}):
            send_output(
                write_fd, PackageOutput(arrays={"images": images}), SharedSlots([memory_file]), lent
            )
            header = read_frame(read_fd)
            assert header is not None and "slot" not in header
            assert header["needed"] == images.nbytes
            assert os.read(read_fd, images.nbytes) == images.tobytes()
    finally:
        os.close(read_fd)
        os.close(write_fd)


GRADIENT_PACKAGE = """
import numpy as np
import torch


def generate(model_file, num_samples, output_path, save_images=False, descend=False):
    if descend:  # a package that computes gradients itself
        weights = torch.ones(2, requires_grad=True)
        (weights * 3).sum().backward()
    return [np.full((2, 2), float(torch.is_grad_enabled())) for _ in range(num_samples)]
"""


def test_legacy_packages_run_without_autograd_unless_they_need_it(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    root = tmp_path / "gradients"
    root.mkdir()
    (root / "__init__.py").write_text(GRADIENT_PACKAGE, encoding="utf-8")
    spec = PackageSpec(
        root=str(root), module_name="gradient_package_under_test", kind="medigan-legacy"
    )
    entry = worker.entry_function(worker.import_package(spec), spec)

    def grad_enabled_in_call(descend: bool) -> float:
        request = BatchRequest(
            num_samples=2,
            seed=5,
            device="cpu",
            args={"descend": descend},
            output_path=str(tmp_path / "out"),
        )
        return float(call_package(entry, spec, request).arrays["images"].max())

    try:
        assert grad_enabled_in_call(False) == 0.0
        # The call that needed gradients fails under no_grad, is made again as medigan made it,
        # and from then on every call of that package is.
        assert grad_enabled_in_call(True) == 1.0
        assert grad_enabled_in_call(False) == 1.0
    finally:
        del sys.modules[spec.module_name]
        worker._NEEDS_GRAD.discard(spec.module_name)
