"""Tests that medigan_catalog stays pure vocabulary: no Django, torch, numpy or HTTP imports."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("django", "rest_framework", "celery", "torch", "numpy", "httpx", "requests", "urllib3")
MODULES = (
    "medigan_catalog",
    "medigan_catalog.errors",
    "medigan_catalog.schema",
    "medigan_catalog.validation",
    "medigan_catalog.lifecycle",
    "medigan_catalog.search",
    "medigan_catalog.medigan_compat",
    "medigan_catalog.packaging",
)


def test_importing_the_catalog_loads_no_forbidden_package() -> None:
    # A fresh interpreter, so that what other tests imported cannot hide or cause a hit.
    script = (
        "import importlib, json, sys\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    )
    loaded = set(json.loads(result.stdout))
    assert loaded.isdisjoint(FORBIDDEN), sorted(loaded & set(FORBIDDEN))
    assert "pydantic" in loaded
