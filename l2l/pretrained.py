"""Official checkpoints at paper scale: found under ``data_root``, never downloaded.

``load_pretrained(cfg)`` builds ``cfg.model.family`` at ``cfg.model.size``, reads the file
``<data_root>/<cfg.model.checkpoint>``, records its sha256 (and checks it against
``cfg.model.checkpoint_sha256`` when set) and loads it strictly with the family's own loader.
l2l ships no expected hashes: the authors publish none, and we do not invent them; pin yours
with ``checkpoint_sha256`` once you have verified a file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from l2l.config import RunConfig
from l2l.io import CheckpointError, data_path, file_sha256
from l2l.models import family, model_for

def checkpoint_path(cfg: RunConfig) -> Path:
    """``<data_root>/<cfg.model.checkpoint>``, or one clear error naming the file and its source."""
    name = cfg.model.family
    if not cfg.model.checkpoint:
        raise ValueError(f"no official checkpoint configured for family {name!r} "
                         f"(model.checkpoint is empty)")
    path = data_path(cfg, cfg.model.checkpoint)
    if not path.is_file():
        source = family(name).official_source or "the family's official release"
        raise FileNotFoundError(f"official {name} checkpoint not found: expected {path}. "
                                f"Download {source} yourself and place it there, or pass "
                                f"DATA_ROOT; l2l never downloads weights.")
    return path


def read_checkpoint(cfg: RunConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """The checkpoint's contents (``weights_only``; ``argparse.Namespace`` allowed, as the
    official MAE/MAGE files store their training args) and its provenance."""
    path = checkpoint_path(cfg)
    sha = file_sha256(path)
    expected = cfg.model.checkpoint_sha256
    if expected and sha != expected.lower():
        raise CheckpointError(f"{path} has sha256 {sha}, expected {expected} "
                              f"(model.checkpoint_sha256): wrong or corrupt file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state, {"checkpoint": str(path), "checkpoint_sha256": sha}


def load_pretrained(cfg: RunConfig) -> tuple[torch.nn.Module, dict[str, str]]:
    """The official original generator of ``cfg.model.family``, strictly loaded, in eval mode,
    with its provenance (path, sha256). Layout mismatches raise ``CheckpointError``."""
    fam = family(cfg.model.family)
    if fam.load_official is None:
        raise ValueError(f"family {fam.name!r} has no official checkpoint; train it instead")
    state, prov = read_checkpoint(cfg)
    model = model_for(cfg)
    try:
        fam.load_official(model, state)
    except RuntimeError as exc:
        raise CheckpointError(f"{prov['checkpoint']} does not fit {fam.name} size "
                              f"{cfg.model.size!r}: {exc}") from exc
    return model.eval(), prov
