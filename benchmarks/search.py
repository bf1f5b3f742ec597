"""Search over 10,000 cards: the search index against medigan 1.0.0's linear scan.

The catalogue is medigan's ``global.json`` (the 23 entries the hub ships,
``hub/registry/seed/medigan-global.json``) replicated under distinct ids to ``--cards``
entries, imported as cards, in the same order for everybody. In one process, ``--repeats``
times in turn (interleaved), it times:

- ``medigan``: medigan 1.0.0's ``ModelSelector.find_matching_models_by_values`` (what its
  ``Generators.find_matching_models_by_values`` calls) for ``['mammography', 'dcgan']`` AND, on
  the same entries as its ``config/global.json``; the anchor of every ratio;
- ``ours medigan``: ``SearchIndex.medigan_find_matching`` for the same values (medigan's
  semantics), and ``compat``: the client's ``ModelSelector.find_matching_models_by_values``,
  which returns medigan's ``ModelMatchCandidate`` list;
- ``ours search``: ``SearchIndex.search`` for ``mammography dcgan``, the prefix ``mammo``, the OR
  of ``brain polyp`` and the filter ``modality=mri``;
- ``client``: ``Client.search(..., medigan_semantics=True)`` and ``Client.search('mammography
  dcgan')`` on a cache holding the catalogue as a synced snapshot (cards returned).

It prints p50/p99 per face and the ratio of medigan's p50 to each, the index's build time, its
size on disk and load time, the wall time of ``medigan-client search mammography dcgan`` on that
cache, the machine's load, and which Python and torch ran. It asserts that every face returns
what medigan returns (model ids, in order) and that every own search equals the linear search
the index replaced (``catalog/tests/search_oracle.py``: hits, scores, matched terms, order).

medigan 1.0.0 is installed in ``.venv-reference`` (``make .venv-reference/.medigan-installed``),
where the catalog and client are installed from this tree; started with another interpreter
the script runs itself there. Its search path is loaded without ``medigan/__init__.py`` (which
imports torch, matplotlib and PyGithub, none of which searching uses), and every connection to
anything but loopback is refused. Run from the repository root:
``python benchmarks/search.py [--cards 10000] [--repeats 5] [--calls 20]``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_PYTHON = ROOT / ".venv-reference" / "bin" / "python"
CATALOGUE = ROOT / "hub" / "registry" / "seed" / "medigan-global.json"
ORACLE = ROOT / "catalog" / "tests" / "search_oracle.py"
HUB_URL = "http://127.0.0.1:9/"  # never contacted: the client runs offline on its cache
VALUES = ["mammography", "dcgan"]
QUERIES: list[tuple[str, str, dict[str, str] | None, str]] = [
    ("search 'mammography dcgan'", "mammography dcgan", None, "AND"),
    ("prefix 'mammo'", "mammo", None, "AND"),
    ("OR 'brain polyp'", "brain polyp", None, "OR"),
    ("filter modality=mri", "", {"modality": "mri"}, "AND"),
]


def _refuse_the_network() -> None:
    """Only loopback: medigan must not download a config, nothing else may leave the machine."""

    def loopback(address: object) -> bool:
        if not isinstance(address, tuple) or not address:
            return True
        host = str(address[0])
        return host in {"localhost", "::1"} or host.startswith("127.")

    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if not loopback(address):
            raise RuntimeError(f"refused a connection to {address!r}")
        real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not loopback((host,)):
            raise RuntimeError(f"refused a name lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo


def _medigan_selector(entries: dict[str, Any], workdir: Path) -> Any:
    """medigan 1.0.0's ``ModelSelector`` over ``entries`` as its ``config/global.json``."""
    spec = importlib.util.find_spec("medigan")
    assert spec is not None and spec.submodule_search_locations, "medigan is not installed"
    package = types.ModuleType("medigan")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["medigan"] = package
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "global.json").write_text(json.dumps(entries), encoding="utf-8")
    os.chdir(workdir)
    try:
        config_manager = importlib.import_module("medigan.config_manager").ConfigManager()
        selector_module = importlib.import_module("medigan.select_model.model_selector")
        return selector_module.ModelSelector(config_manager=config_manager)
    finally:
        os.chdir(ROOT)


def _replicated(count: int) -> dict[str, Any]:
    """medigan's catalogue replicated to ``count`` entries with distinct ids, copy by copy."""
    original: dict[str, Any] = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    entries: dict[str, Any] = {}
    copy = 0
    while len(entries) < count:
        for model_id, entry in original.items():
            if len(entries) == count:
                break
            entries[model_id if copy == 0 else f"{model_id}_C{copy:04d}"] = entry
        copy += 1
    return entries


def _load_oracle() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("search_oracle", ORACLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _write_cache(cache_dir: Path, cards: list[Any]) -> None:
    """A client cache holding ``cards`` as the synced snapshot of ``HUB_URL``."""
    from medigan_catalog.snapshot import CatalogSnapshot, HubInfo, SnapshotRelease
    from medigan_client.cache import Cache, write_atomic

    snapshot = CatalogSnapshot(
        serial=1,
        hub=HubInfo(url=HUB_URL),
        releases=tuple(
            SnapshotRelease(model_id=card.model_id, version=card.version, card=card)
            for card in cards
        ),
    )
    path = Cache(cache_dir).snapshot_path(HUB_URL)
    write_atomic(path, snapshot.model_dump_json(by_alias=True).encode())


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def _versions() -> str:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    python = sys.version.split()[0]
    return (
        f"python {python} ({sys.executable}), torch {version('torch')} (not imported), "
        f"medigan {version('medigan')}, pydantic {version('pydantic')}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cards", type=int, default=10_000, help="catalogue size")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (>= 3)")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per round of ours")
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3")
    if importlib.util.find_spec("medigan") is None:
        if not REFERENCE_PYTHON.exists() or Path(sys.executable) == REFERENCE_PYTHON:
            print(
                "medigan 1.0.0 is needed: make .venv-reference/.installed "
                ".venv-reference/.medigan-installed",
                file=sys.stderr,
            )
            return 1
        command = [str(REFERENCE_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]]
        return subprocess.call(command, cwd=ROOT)

    _refuse_the_network()
    sys.path.insert(0, str(ROOT))
    from medigan_catalog.medigan_compat import import_global_json
    from medigan_catalog.search_index import SearchIndex
    from medigan_client import Client
    from medigan_client.compat.catalogue import MediganCatalogue
    from medigan_client.compat.selection import ModelSelector

    print(_versions())
    print(f"load average at start: {os.getloadavg()}")
    entries = _replicated(args.cards)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the import's one warning per normalised value
        cards = import_global_json(entries).cards
    assert [card.name for card in cards] == list(entries), "the catalogue order differs"

    workdir = Path(tempfile.mkdtemp(prefix="search-benchmark-"))
    try:
        medigan = _medigan_selector(entries, workdir / "medigan")
        build_times = []
        for _ in range(3):
            seconds, index = _timed(lambda: SearchIndex.build(cards))
            build_times.append(seconds)
        dumps_seconds, stored = _timed(lambda: index.dumps("benchmark"))
        load_times = [_timed(lambda: SearchIndex.loads(stored, "benchmark"))[0] for _ in range(5)]
        compat = ModelSelector(MediganCatalogue(cards))
        compat_build, _ = _timed(compat.search_index)

        cache_dir = workdir / "cache"
        _write_cache(cache_dir, cards)
        client = Client(hub_url=HUB_URL, cache_dir=cache_dir, offline=True, progress=False)
        first_client_search, _ = _timed(lambda: client.search(VALUES, medigan_semantics=True))

        # Results first: every face answers what medigan and the linear search answer.
        expected_ids = [c.model_id for c in medigan.find_matching_models_by_values(VALUES)]
        assert [cards[p].name for p in index.medigan_find_matching(VALUES)] == expected_ids
        assert [c.model_id for c in compat.find_matching_models_by_values(VALUES)] == expected_ids
        client_hits = client.search(VALUES, medigan_semantics=True)
        assert [hit.card.name for hit in client_hits] == expected_ids
        oracle = _load_oracle()
        positions = {id(card): position for position, card in enumerate(cards)}
        oracle_seconds: dict[str, float] = {}
        for label, query, filters, operator in QUERIES:
            seconds, expected = _timed(
                lambda q=query, f=filters, o=operator: oracle.search(
                    cards, q, filters=f, operator=o
                )
            )
            oracle_seconds[label] = seconds
            found = index.search(query, filters=filters, operator=operator)
            assert [(h.position, h.score, h.matched_terms) for h in found] == [
                (positions[id(h.card)], h.score, h.matched_terms) for h in expected
            ], label
        print(
            f"{len(cards)} cards; {len(expected_ids)} match {VALUES} (medigan, AND); results of "
            "every face equal medigan's and the linear search's"
        )

        faces: dict[str, Callable[[], Any]] = {
            "ours medigan (index)": lambda: index.medigan_find_matching(VALUES),
            "compat ModelSelector": lambda: compat.find_matching_models_by_values(VALUES),
            "client medigan": lambda: client.search(VALUES, medigan_semantics=True),
            "client search": lambda: client.search("mammography dcgan"),
        }
        for label, query, filters, operator in QUERIES:
            faces[f"ours {label}"] = lambda q=query, f=filters, o=operator: index.search(
                q, filters=f, operator=o
            )
        samples: dict[str, list[float]] = {"medigan 1.0.0": []}
        samples.update({label: [] for label in faces})
        for _ in range(args.repeats):
            seconds, _ = _timed(lambda: medigan.find_matching_models_by_values(VALUES))
            samples["medigan 1.0.0"].append(seconds)
            for label, face in faces.items():
                samples[label].extend(_timed(face)[0] for _ in range(args.calls))

        command = [
            str(Path(sys.executable).parent / "medigan-client"),
            "--hub",
            HUB_URL,
            "--cache-dir",
            str(cache_dir),
            "--offline",
            "search",
            "mammography",
            "dcgan",
        ]
        cli_times = []
        for _ in range(3):
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            cli_times.append(time.perf_counter() - start)
        cli_ids = [line.split("\t")[0] for line in done.stdout.splitlines()]
        assert cli_ids == [hit.entry.model_id for hit in index.search("mammography dcgan")], (
            "the command line printed other hits"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    anchor = statistics.median(samples["medigan 1.0.0"])
    print(f"\n{'face':<34} {'p50 ms':>9} {'p99 ms':>9} {'medigan/p50':>12}  samples")
    for label, values in samples.items():
        p50 = statistics.median(values)
        print(
            f"{label:<34} {p50 * 1e3:9.2f} {_percentile(values, 0.99) * 1e3:9.2f} "
            f"{anchor / p50:11.1f}x  {len(values)}"
        )
    print("\nthe linear search the index replaced, one run each:")
    for label, seconds in oracle_seconds.items():
        print(f"  {label:<32} {seconds * 1e3:9.1f} ms")
    print(
        f"\nindex build: {statistics.median(build_times):.2f} s (median of 3; "
        f"{statistics.median(build_times) / len(cards) * 1e6:.0f} us a card); "
        f"written in {dumps_seconds:.2f} s, {len(stored) / 1e6:.2f} MB; "
        f"load {statistics.median(load_times) * 1e3:.1f} ms "
        f"(median of 5); compat selector's own index {compat_build:.2f} s; first client search "
        f"(reads the snapshot, builds and stores the index) {first_client_search:.2f} s"
    )
    print(
        f"medigan-client search mammography dcgan (whole process, index stored): "
        f"{statistics.median(cli_times):.3f} s (median of 3)"
    )
    print(f"load average at end: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
