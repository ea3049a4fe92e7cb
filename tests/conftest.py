"""Shared fixtures: unit tests never read $L2L_SCALE and never write into the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("L2L_SCALE", raising=False)
    monkeypatch.setenv("L2L_OUTPUT_ROOT", str(tmp_path / "out"))


@pytest.fixture
def smoke_cfg():
    from l2l.config import preset

    return preset("smoke")
