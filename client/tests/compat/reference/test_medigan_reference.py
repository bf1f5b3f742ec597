"""Search and rank of ``Generators`` against medigan 1.0.0 itself, call for call.

Runs where medigan 1.0.0 is installed (``make test-reference`` installs it in
``.venv-reference``; elsewhere the test skips). medigan's search path is loaded without
``medigan/__init__.py``, whose import of its ``generators`` module needs torch, matplotlib and
PyGithub, none of which searching uses: ``medigan.config_manager`` and
``medigan.select_model.model_selector`` are imported from the installed package. medigan reads
``config/global.json`` below the working directory, so the test runs in a temporary folder
holding the catalogue vendored with the hub, and every connection to anything but loopback is
refused, so medigan cannot download a config.

medigan's ``Generators`` methods compared here delegate to those two objects: each call is made
the way ``Generators`` makes it (:func:`call_medigan`; read in medigan's ``generators.py``).
The installed ``generators.py`` is also parsed (not imported) to check that every public method
of medigan's class exists here with the same parameters and defaults.

With ``MEDIGAN_REFERENCE_RECORD=<file>`` in the environment, the results medigan gave are also
written to that file; that is how ``client/tests/compat/data/medigan-1.0.0-search-results.json``
(checked in every environment by ``test_selection.py``) was made.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import shutil
import socket
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from medigan_client.compat import Generators

if TYPE_CHECKING:
    from conftest import FakeHub, MakeGenerators

REPO_ROOT = Path(__file__).resolve().parents[4]
MEDIGAN_GLOBAL_JSON = REPO_ROOT / "hub" / "registry" / "seed" / "medigan-global.json"
PINNED_RESULTS = REPO_ROOT / "client/tests/compat/data/medigan-1.0.0-search-results.json"
MEDIGAN_VERSION = "1.0.0"
RECORD_VARIABLE = "MEDIGAN_REFERENCE_RECORD"

# medigan's documented calls (README and the code examples of its documentation) and more,
# covering operators, key matching, case sensitivity, list metrics, nested and textual metrics.
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("list_models", {}),
    ("find_matching_models_by_values", {"values": ["DCGAN", "Mammography", "BCDR"]}),
    (
        "find_matching_models_by_values",
        {
            "values": ["dcgan", "Mammography", "inbreast"],
            "target_values_operator": "AND",
            "are_keys_also_matched": True,
            "is_case_sensitive": False,
        },
    ),
    (
        "find_matching_models_by_values",
        {
            "values": ["dcgan", "mMg", "ClF", "modalities", "inbreast"],
            "target_values_operator": "AND",
            "are_keys_also_matched": True,
            "is_case_sensitive": False,
        },
    ),
    (
        "find_matching_models_by_values",
        {"values": ["CycleGAN", "pix2pix"], "target_values_operator": "OR"},
    ),
    (
        "find_matching_models_by_values",
        {"values": ["mri", "endoscopy", "x-ray"], "target_values_operator": "XOR"},
    ),
    ("find_matching_models_by_values", {"values": ["DCGAN"], "is_case_sensitive": True}),
    ("find_matching_models_by_values", {"values": ["dcgan"], "is_case_sensitive": True}),
    (
        "find_matching_models_by_values",
        {
            "values": ["FID", "turing_test"],
            "target_values_operator": "AND",
            "are_keys_also_matched": True,
        },
    ),
    ("find_matching_models_by_values", {"values": ["WGANGP"]}),
    ("find_matching_models_by_values", {"values": ["WGAN-GP"]}),
    ("find_matching_models_by_values", {"values": ["128", "2021"]}),
    ("find_matching_models_by_values", {"values": ["None"], "target_values_operator": "OR"}),
    ("find_matching_models_by_values", {"values": ["no such value"]}),
    ("rank_models_by_performance", {"metric": "SSIM", "order": "asc"}),
    ("rank_models_by_performance", {"metric": "FID", "order": "asc"}),
    ("rank_models_by_performance", {"metric": "FID", "order": "desc"}),
    ("rank_models_by_performance", {"metric": "FID_RADIMAGENET_ratio"}),
    ("rank_models_by_performance", {"metric": "CLF.trained_on_real.f1", "order": "desc"}),
    ("rank_models_by_performance", {"metric": "turing_test.AUC", "order": "asc"}),
    ("rank_models_by_performance", {"metric": "turing_test.AUC", "order": "desc"}),
    (
        "rank_models_by_performance",
        {"metric": "downstream_task.SEG.trained_on_real_and_fake.dice", "order": "desc"},
    ),
    (
        "rank_models_by_performance",
        {
            "model_ids": [
                "00004_PIX2PIX_MMG_MASSES_W_MASKS",
                "00009_PGGAN_POLYP_PATCHES_W_MASKS",
                "00010_FASTGAN_POLYP_PATCHES_W_MASKS",
            ],
            "metric": "FID",
            "order": "desc",
        },
    ),
    ("rank_models_by_performance", {"model_ids": [], "metric": "FID"}),
    (
        "find_models_and_rank",
        {
            "values": ["dcgan", "mMg", "ClF", "modalities", "inbreast"],
            "target_values_operator": "AND",
            "are_keys_also_matched": True,
            "is_case_sensitive": False,
            "metric": "SSIM",
            "order": "asc",
        },
    ),
    ("find_models_and_rank", {"values": ["mammography"], "metric": "FID", "order": "asc"}),
    (
        "find_models_and_rank",
        {"values": ["endoscopy", "x-ray"], "target_values_operator": "OR", "metric": "FID"},
    ),
    (
        "get_models_by_key_value_pair",
        {"key1": "modality", "value1": "Full-Field Mammography", "is_case_sensitive": False},
    ),
    ("get_models_by_key_value_pair", {"key1": "type", "value1": "dcgan"}),
    (
        "get_models_by_key_value_pair",
        {"key1": "type", "value1": "dcgan", "is_case_sensitive": True},
    ),
    ("get_models_by_key_value_pair", {"key1": "performance.FID_no_images", "value1": "1000"}),
    ("get_selection_criteria_by_id", {"model_id": 1}),
    ("get_selection_criteria_by_id", {"model_id": "00023_PIX2PIXHD_BREAST_DCEMRI"}),
    (
        "get_selection_criteria_by_ids",
        {
            "model_ids": [1, "00005", "00010_FASTGAN_POLYP_PATCHES_W_MASKS"],
            "are_model_ids_removed": False,
        },
    ),
    ("get_selection_values_for_key", {"key": "type"}),
    ("get_selection_values_for_key", {"key": "modality"}),
    ("get_selection_keys", {}),
    ("get_selection_keys", {"model_id": "00022_WGAN_CARDIAC_AGING"}),
    ("get_config_by_id", {"model_id": 1, "config_key": "execution"}),
    (
        "get_config_by_id",
        {
            "model_id": "00021_CYCLEGAN_BRAIN_MRI_T1_T2",
            "config_key": "execution.generate_method.args.custom",
        },
    ),
    ("get_config_by_id", {"model_id": "23", "config_key": "selection.performance"}),
]


def _is_loopback(address: object) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and the like never leave the machine
    host = str(address[0])
    return host in {"localhost", "::1"} or host.startswith("127.")


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse every connection and name lookup that is not for this machine."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if not _is_loopback(address):
            raise AssertionError(f"the test tried to connect to {address!r}")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not _is_loopback(address):
            raise AssertionError(f"the test tried to connect to {address!r}")
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback((host,)):
            raise AssertionError(f"the test tried to look up {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def medigan_package_dir() -> Path:
    """The folder of the installed medigan 1.0.0 package (its sources, not imported)."""
    spec = importlib.util.find_spec("medigan")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(
            "medigan 1.0.0 is not installed in this environment; `make test-reference` "
            "installs it in .venv-reference"
        )
    version = importlib.metadata.version("medigan")
    if version != MEDIGAN_VERSION:
        pytest.skip(
            f"medigan {version} is installed; these results are medigan {MEDIGAN_VERSION}'s"
        )
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture
def medigan_search(
    loopback_only: None,
    medigan_package_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Any, Any]]:
    """medigan 1.0.0's ``ConfigManager`` and ``ModelSelector`` over the vendored catalogue."""
    for name in [n for n in sys.modules if n == "medigan" or n.startswith("medigan.")]:
        monkeypatch.delitem(sys.modules, name)
    # The package without its __init__.py (which imports generators: torch, matplotlib, ...).
    package = types.ModuleType("medigan")
    package.__path__ = [str(medigan_package_dir)]
    monkeypatch.setitem(sys.modules, "medigan", package)
    config_dir = tmp_path / "medigan-cwd" / "config"
    config_dir.mkdir(parents=True)
    shutil.copyfile(MEDIGAN_GLOBAL_JSON, config_dir / "global.json")
    monkeypatch.chdir(config_dir.parent)
    config_manager = importlib.import_module("medigan.config_manager").ConfigManager()
    selector_module = importlib.import_module("medigan.select_model.model_selector")
    model_selector = selector_module.ModelSelector(config_manager=config_manager)
    yield config_manager, model_selector
    for name in [n for n in sys.modules if n == "medigan" or n.startswith("medigan.")]:
        del sys.modules[name]


def test_loopback_only_refuses_connections_elsewhere(loopback_only: None) -> None:
    with pytest.raises(AssertionError, match=r"192\.0\.2\.1"):
        socket.create_connection(("192.0.2.1", 80), timeout=1)


def call_medigan(
    config_manager: Any, model_selector: Any, method: str, kwargs: dict[str, Any]
) -> Any:
    """The call the same-named method of medigan's ``Generators`` makes."""
    if method == "list_models":
        return list(config_manager.model_ids)
    if method == "get_config_by_id":
        model_id = config_manager.match_model_id(provided_model_id=kwargs["model_id"])
        return config_manager.get_config_by_id(model_id, kwargs.get("config_key"))
    if method == "get_selection_criteria_by_id":
        # Generators matches the id and does not pass is_model_id_removed on.
        model_id = config_manager.match_model_id(provided_model_id=kwargs["model_id"])
        return model_selector.get_selection_criteria_by_id(model_id=model_id)
    if method == "get_selection_criteria_by_ids":
        model_ids = [
            config_manager.match_model_id(provided_model_id=model_id)
            for model_id in kwargs["model_ids"]
        ]
        return model_selector.get_selection_criteria_by_ids(
            model_ids=model_ids, are_model_ids_removed=kwargs.get("are_model_ids_removed", True)
        )
    # find_*, rank_*, get_models_by_key_value_pair, get_selection_values_for_key and
    # get_selection_keys pass their arguments through unchanged.
    return getattr(model_selector, method)(**kwargs)


def test_search_and_rank_equal_medigan_1_0_0(
    medigan_search: tuple[Any, Any],
    medigan_hub: FakeHub,
    make_generators: MakeGenerators,
    shape_result: Callable[[str, Any], Any],
) -> None:
    config_manager, model_selector = medigan_search
    assert len(config_manager.model_ids) == 23
    generators = make_generators()
    recorded = []
    for method, kwargs in CALLS:
        expected = shape_result(
            method, call_medigan(config_manager, model_selector, method, kwargs)
        )
        ours = shape_result(method, getattr(generators, method)(**kwargs))
        assert ours == expected, f"{method}({kwargs})"
        recorded.append({"method": method, "kwargs": kwargs, "result": expected})
    record_to = os.environ.get(RECORD_VARIABLE)
    if record_to:
        document = {
            "recorded_with": f"medigan {MEDIGAN_VERSION} from PyPI",
            "how": (
                f"{RECORD_VARIABLE}=<file> pytest client/tests/compat/reference "
                "(see that test's docstring)"
            ),
            "catalogue": "hub/registry/seed/medigan-global.json",
            "calls": recorded,
        }
        Path(record_to).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    else:
        # The pinned results that every environment checks are medigan's own.
        pinned = json.loads(PINNED_RESULTS.read_text(encoding="utf-8"))
        assert recorded == pinned["calls"]


def _medigan_methods(source: str) -> dict[str, tuple[list[str], dict[str, object], bool]]:
    """Each public method of medigan's ``Generators``: parameters, defaults, ``**kwargs``."""
    tree = ast.parse(source)
    (generators,) = [
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Generators"
    ]
    methods: dict[str, tuple[list[str], dict[str, object], bool]] = {}
    for node in generators.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        names = [argument.arg for argument in node.args.args[1:]]
        defaults = {
            name: ast.literal_eval(default)
            for name, default in zip(
                names[len(names) - len(node.args.defaults) :], node.args.defaults, strict=True
            )
        }
        methods[node.name] = (names, defaults, node.args.kwarg is not None)
    return methods


def test_every_public_method_of_medigans_generators_is_here(medigan_package_dir: Path) -> None:
    source = (medigan_package_dir / "generators.py").read_text(encoding="utf-8")
    methods = _medigan_methods(source)
    assert len(methods) >= 30
    for name, (names, defaults, takes_kwargs) in methods.items():
        assert hasattr(Generators, name), name
        parameters = list(inspect.signature(getattr(Generators, name)).parameters.values())[1:]
        positional = [p for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        assert [p.name for p in positional] == names, name
        for parameter in positional:
            if parameter.name in defaults:
                assert parameter.default == defaults[parameter.name], (name, parameter.name)
            else:
                assert parameter.default is inspect.Parameter.empty, (name, parameter.name)
        ours_take_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        assert ours_take_kwargs == takes_kwargs, name
