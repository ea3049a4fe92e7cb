"""Shared fixtures: unit tests never read $L2L_SCALE and never write into the repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("L2L_SCALE", raising=False)
    monkeypatch.setenv("L2L_OUTPUT_ROOT", str(tmp_path / "out"))


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> Iterator[None]:
    # tiny models: intra-op threads only add overhead, and stall badly when the cores are busy
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def smoke_cfg():
    from l2l.config import preset

    return preset("smoke")
