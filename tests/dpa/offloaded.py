"""The fixture that reads every file in a worker process (`dpa.offload`), for the tests that
run other modules' scenarios again that way (tests/dpa/test_offloaded_*.py)."""

from __future__ import annotations

import pytest

from dpa import offload


@pytest.fixture(autouse=True)
def always_offload(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every `dpa ingest cdr` of a regular file reads it in a worker, however small."""
    monkeypatch.setattr(offload, "OFFLOAD_BYTES", 0)
