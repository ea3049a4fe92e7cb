"""Official-checkpoint loading at paper scale: found, hashed, strictly loaded, or one clear error."""

from __future__ import annotations

import hashlib

import pytest
import torch

from l2l.config import preset
from l2l.io import CheckpointError
from l2l.models import build_model
from l2l.pretrained import load_pretrained


def _cfg(tmp_path, **kw):
    return preset("smoke", data_root=str(tmp_path), checkpoint="checkpoints/mae.pth", **kw)


def _place(tmp_path, state) -> bytes:
    path = tmp_path / "checkpoints" / "mae.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path.read_bytes()


def test_official_layout_loads_strictly_and_records_sha256(tmp_path):
    torch.manual_seed(3)
    source = build_model("mae", "smoke")
    blob = _place(tmp_path, {"model": source.state_dict()})
    model, prov = load_pretrained(_cfg(tmp_path))
    assert prov["checkpoint_sha256"] == hashlib.sha256(blob).hexdigest()
    assert prov["checkpoint"].endswith("checkpoints/mae.pth") and not model.training
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    pinned = _cfg(tmp_path, checkpoint_sha256=prov["checkpoint_sha256"].upper())
    assert load_pretrained(pinned)[1] == prov


def test_missing_file_names_path_and_source(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoints/mae\.pth.*facebookresearch/mae"):
        load_pretrained(_cfg(tmp_path))


def test_wrong_hash_corrupt_file_and_wrong_layout_are_checkpoint_errors(tmp_path):
    _place(tmp_path, {"model": build_model("mae", "smoke").state_dict()})
    with pytest.raises(CheckpointError, match="expected 00ff"):
        load_pretrained(_cfg(tmp_path, checkpoint_sha256="00ff"))
    (tmp_path / "checkpoints" / "mae.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_pretrained(_cfg(tmp_path))
    state = build_model("mae", "smoke").state_dict()
    state.pop("mask_token")
    _place(tmp_path, {"model": state})
    with pytest.raises(CheckpointError, match="does not fit mae"):
        load_pretrained(_cfg(tmp_path))


def test_families_without_official_weights_refuse(tmp_path):
    cfg = preset("smoke", data_root=str(tmp_path), family="autoencoder", checkpoint="x.pth")
    with pytest.raises(ValueError, match="no official checkpoint"):
        load_pretrained(cfg)


def test_trained_generator_uses_the_official_original(tmp_path):
    from l2l.data import load_data
    from l2l.experiments import trained_generator

    torch.manual_seed(5)
    source = build_model("mae", "smoke")
    _place(tmp_path, {"model": source.state_dict()})
    cfg = _cfg(tmp_path)
    images, split = load_data(cfg)
    model, hist = trained_generator(cfg, "original", images, split)
    assert torch.equal(model.state_dict()["pos_embed"], source.state_dict()["pos_embed"])
    assert torch.equal(model.state_dict()["blocks.0.attn.qkv.weight"],
                       source.state_dict()["blocks.0.attn.qkv.weight"])
    assert len(hist) == 0 and len(hist.attrs["checkpoint_sha256"]) == 64
