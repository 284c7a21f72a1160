"""Each module's __all__ names what it really exports."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import dpa
import exports
import retention

MODULES = sorted(
    {
        m.name
        for pkg in (dpa, retention, exports)
        for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")
        if ".migrations" not in m.name
    }
    | {"dpa", "retention", "exports"}
)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_declared_and_exists(name: str) -> None:
    module = importlib.import_module(name)
    if name.startswith("dpa.cli."):
        return  # command modules expose `app`, not a library API
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    for exported in module.__all__:
        assert hasattr(module, exported), f"{name}.__all__ names missing {exported!r}"


def test_core_never_imports_the_engines() -> None:
    import subprocess
    import sys

    code = (
        "import sys, dpa.workspace, dpa.register, dpa.ledger, dpa.art30, dpa.customers;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('retention', 'exports')];"
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"dpa core imported {result.stdout}"
