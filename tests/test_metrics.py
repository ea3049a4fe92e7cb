"""Unit tests for l2l.metrics and the domain feature network (CPU, offline, seconds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from l2l.evaluation import mean_fill, noise_fill
from l2l.extractors import extract, get_extractor
from l2l.metrics import (
    bootstrap_std,
    completion_metrics,
    fid_from_features,
    frechet_gaussian,
    hole_box,
    hole_crop,
    hole_mse,
    inception_score,
    kid_from_features,
    metric_provenance,
    pair_cosine,
    psnr_from_mse,
)
from l2l.models.classifier import DomainClassifier


def centre_mask(size: int = 32, side: int = 16, batch: int = 1) -> torch.Tensor:
    mask = torch.zeros(batch, 1, size, size)
    lo = (size - side) // 2
    mask[..., lo:lo + side, lo:lo + side] = 1.0
    return mask


# ----------------------------------------------------------------------------- FID
def test_fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(500, 16)), rng.normal(0.3, 1.2, size=(400, 16))
    assert abs(fid_from_features(a, a)) < 1e-6
    assert fid_from_features(a, b) == pytest.approx(fid_from_features(b, a), rel=1e-6)
    assert fid_from_features(a, b) > 0.5


def test_frechet_gaussian_matches_closed_form_for_diagonal_covariances():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    s1, s2 = rng.uniform(0.2, 3.0, size=8), rng.uniform(0.2, 3.0, size=8)
    closed = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_gaussian(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(closed, rel=1e-8)


def test_fid_from_samples_approaches_the_gaussian_closed_form():
    rng = np.random.default_rng(2)
    d, n = 4, 100_000
    mu1, mu2 = np.zeros(d), np.full(d, 0.5)
    s1, s2 = np.ones(d), np.full(d, 2.0)
    closed = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))  # = 1.343
    a = rng.normal(mu1, np.sqrt(s1), size=(n, d))
    b = rng.normal(mu2, np.sqrt(s2), size=(n, d))
    # Sampling error of mean and covariance at n = 1e5, d = 4 is ~1e-2; allow 0.05 absolute.
    assert fid_from_features(a, b) == pytest.approx(closed, abs=0.05)


def test_fid_rejects_mismatched_dimensions():
    with pytest.raises(ValueError):
        fid_from_features(np.zeros((10, 3)), np.zeros((10, 4)))


# ----------------------------------------------------------------------------- IS and cosine
def test_inception_score_limits():
    k = 5
    constant = np.tile(np.full(k, 1.0 / k), (100, 1))
    assert inception_score(constant) == pytest.approx((1.0, 0.0), abs=1e-6)
    same_class = np.tile(np.eye(k)[2], (100, 1))  # confident but always the same class
    assert inception_score(same_class)[0] == pytest.approx(1.0, abs=1e-6)
    balanced = np.tile(np.eye(k), (20, 1))  # every split of 10 holds each class twice
    mean, std = inception_score(balanced, splits=10)
    assert isinstance(mean, float) and isinstance(std, float)
    assert mean == pytest.approx(k, abs=1e-6) and std == pytest.approx(0.0, abs=1e-6)


def test_inception_score_is_between_one_and_k_for_random_probabilities():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(200, 10)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    mean, std = inception_score(probs, splits=4)
    assert 1.0 < mean < 10.0 and std >= 0.0
    with pytest.raises(ValueError):
        inception_score(probs[:3], splits=10)


def test_pair_cosine_identical_negated_and_range():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(50, 12)), rng.normal(size=(50, 12))
    assert pair_cosine(a, a) == pytest.approx(np.ones(50), abs=1e-12)
    assert pair_cosine(a, -a) == pytest.approx(-np.ones(50), abs=1e-12)
    cos = pair_cosine(a, b)
    assert cos.shape == (50,) and np.all(cos >= -1) and np.all(cos <= 1)
    assert pair_cosine(a, 3.0 * a) == pytest.approx(np.ones(50), abs=1e-12)  # scale-free


# ----------------------------------------------------------------------------- hole geometry
def test_hole_box_and_crop_of_a_centred_box():
    mask = centre_mask(32, 16)
    assert hole_box(mask) == (8, 8, 24, 24)
    x = torch.rand(4, 3, 32, 32)
    assert torch.equal(hole_crop(x, mask, size=16), x[..., 8:24, 8:24])
    crop = hole_crop(x, mask)
    assert crop.shape == (4, 3, 32, 32) and crop.min() >= 0 and crop.max() <= 1
    const = torch.full((2, 3, 32, 32), 0.3)
    assert torch.allclose(hole_crop(const, mask), torch.full((2, 3, 32, 32), 0.3), atol=1e-6)


def test_hole_box_uses_the_union_of_per_image_holes():
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 4:10, 6:12] = 1.0
    mask[1, :, 8:20, 2:5] = 1.0
    assert hole_box(mask) == (4, 2, 20, 12)
    with pytest.raises(ValueError):
        hole_box(torch.zeros(1, 1, 8, 8))


def test_hole_mse_zero_hand_value_and_blind_outside_the_hole():
    mask = centre_mask(32, 16)
    target = torch.rand(3, 3, 32, 32)
    assert torch.equal(hole_mse(target, target, mask), torch.zeros(3))
    pred = target.clone()
    pred[0, 0, 8:24, 8:24] += 0.5  # one channel of image 0, every hole pixel off by 0.5
    expected = 0.25 / 3  # 0.5^2 on one of three channels
    assert hole_mse(pred, target, mask) == pytest.approx([expected, 0.0, 0.0], abs=1e-6)
    outside = pred.clone()
    outside[..., :8, :] = 1.0 - outside[..., :8, :]
    outside[..., :, 24:] = 0.0
    assert torch.equal(hole_mse(outside, target, mask), hole_mse(pred, target, mask))


def test_psnr_from_mse():
    assert psnr_from_mse(0.01) == pytest.approx(20.0)
    assert psnr_from_mse(0.0) == math.inf


# ----------------------------------------------------------------------------- bootstrap
def test_bootstrap_std_is_deterministic_and_zero_for_a_constant_statistic():
    values = np.random.default_rng(5).normal(size=200)

    def stat(i: np.ndarray) -> float:
        return float(values[i].mean())

    s1, s2 = bootstrap_std(stat, 200, 30, seed=7), bootstrap_std(stat, 200, 30, seed=7)
    assert s1 == s2 and s1 > 0
    assert bootstrap_std(stat, 200, 30, seed=8) != s1
    # Standard error of a mean of 200 unit normals is ~0.07.
    assert 0.03 < s1 < 0.12
    assert bootstrap_std(lambda i: 1.5, 200, 30, seed=7) == 0.0
    assert math.isnan(bootstrap_std(stat, 200, 1, seed=7))


# ----------------------------------------------------------------------------- reference fills
@pytest.mark.parametrize("fill", ["mean", "noise"])
def test_reference_fills_keep_known_pixels_and_stay_in_range(fill):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 32, 32, generator=gen)
    mask = centre_mask(32, 16)
    out = mean_fill(x, mask) if fill == "mean" else noise_fill(x, mask, generator=gen)
    known = (mask == 0).expand_as(x)
    assert torch.equal(out[known], x[known])
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)


def test_mean_fill_uses_each_images_known_colour():
    x = torch.zeros(2, 3, 8, 8)
    x[0, 0], x[1, 2] = 0.2, 0.9  # constant known colours (0.2, 0, 0) and (0, 0, 0.9)
    mask = centre_mask(8, 4)
    x_holed = torch.where(mask.bool(), torch.ones_like(x), x)  # hole content must not matter
    out = mean_fill(x_holed, mask)
    assert torch.allclose(out, x, atol=1e-6)


def test_noise_fill_is_seeded():
    x, mask = torch.rand(2, 3, 32, 32), centre_mask(32, 16)
    a = noise_fill(x, mask, generator=torch.Generator().manual_seed(1))
    b = noise_fill(x, mask, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------- network and row
def _domain(net):
    return get_extractor("domain", net=net, device="cpu")


def test_domain_classifier_shapes_and_provenance():
    net = DomainClassifier().eval()
    x = torch.rand(5, 3, 32, 32)
    with torch.no_grad():
        assert net.features(x).shape == (5, 128)
        assert net(x).shape == (5, 10)
    prov = net.provenance()
    assert prov["extractor"] == "domain" and prov["feature_dim"] == 128 and prov["n_classes"] == 10


def test_extract_returns_features_and_probabilities_and_restores_mode():
    torch.manual_seed(0)
    net = DomainClassifier(n_classes=4, feature_dim=16, width=8).train()
    feats, probs = extract(net, torch.rand(10, 3, 32, 32), batch_size=3)
    assert feats.shape == (10, 16) and probs.shape == (10, 4)
    assert feats.dtype == np.float64 and np.allclose(probs.sum(axis=1), 1.0)
    assert net.training


# An untrained network's features are nearly collinear, so SciPy warns that S1 S2 is close to
# singular; the FID is still finite and exact at 0 for identical sets.
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_completion_metrics_row_on_a_tiny_untrained_network():
    torch.manual_seed(0)
    net = DomainClassifier(n_classes=10, feature_dim=16, width=8)
    gen = torch.Generator().manual_seed(0)
    targets = torch.rand(64, 3, 32, 32, generator=gen)
    mask = centre_mask(32, 16)
    outputs = noise_fill(targets, mask, generator=gen)
    row = completion_metrics(outputs, targets, mask, _domain(net), n_boot=5, seed=0)
    expected = {f"{m}_{r}{s}" for m in ("fid", "kid", "is", "cos") for r in ("full", "hole")
                for s in ("", "_std")}
    expected |= {"mse_hole", "mse_hole_std", "psnr_hole", "n_images"}
    assert set(row) == expected
    assert all(math.isfinite(v) for v in row.values())
    assert row["n_images"] == 64 and row["mse_hole"] > 0
    assert row["fid_hole"] > 0 and row["cos_hole"] < row["cos_full"] <= 1.0

    same = completion_metrics(targets, targets, mask, _domain(net), n_boot=3, seed=0)
    assert same["fid_hole"] == pytest.approx(0.0, abs=1e-6)
    assert same["fid_full"] == pytest.approx(0.0, abs=1e-6)
    assert same["cos_hole"] == pytest.approx(1.0) and same["mse_hole"] == 0.0
    assert abs(same["kid_hole"]) < 0.5 * row["kid_hole"] and same["kid_hole_std"] > 0


def test_completion_metrics_without_class_outputs_gives_nan_is_and_rejects_other_objects():
    gen = torch.Generator().manual_seed(1)
    targets = torch.rand(16, 3, 32, 32, generator=gen)
    mask = centre_mask(32, 16)

    class NoHead:  # an Extractor-like object without class outputs (as Inception, CLIP)
        def run(self, x):
            return x.flatten(1)[:, :24].double().numpy(), None

    row = completion_metrics(noise_fill(targets, mask, generator=gen), targets, mask, NoHead(),
                             n_boot=3, seed=0)
    assert math.isnan(row["is_full"]) and math.isnan(row["is_hole_std"])
    assert math.isfinite(row["fid_hole"]) and math.isfinite(row["kid_hole"])
    with pytest.raises(TypeError, match="Extractor"):
        completion_metrics(targets, targets, mask, object(), n_boot=3, seed=0)


def test_metric_provenance_describes_the_extractor_and_regions():
    prov = metric_provenance(DomainClassifier(), n_images=500, image_size=32, n_boot=50, seed=3)
    assert prov["extractor"] == "domain" and prov["n_boot"] == 50 and prov["n_images"] == 500
    assert prov["seed"] == 3 and "250 pairs" in prov["kid_impl"]
    assert prov["fid_impl"].startswith("clean-fid ") and "fid_from_feats" in prov["fid_impl"]
    assert "32x32" in prov["regions"]["hole"]
    assert set(prov["versions"]) == {"torch", "numpy", "scipy", "clean-fid"}


# ----------------------------------------------------------------------------- KID
def test_kid_on_equal_sets_is_the_small_closed_form_value_and_near_zero():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(400, 16))
    mean, std = kid_from_features(a, a, num_subsets=5)
    # m = N: each subset is all of ``a``, so the estimate is exact: the unbiased within-set terms
    # minus the cross term, whose diagonal k(x_i, x_i) is kept -> O(1/m), slightly negative.
    k = (a @ a.T / a.shape[1] + 1) ** 3
    m = len(a)
    closed = (2 * (k.sum() - np.trace(k)) / (m - 1) - 2 * k.sum() / m) / m
    assert mean == pytest.approx(closed, rel=1e-9) and std == pytest.approx(0.0, abs=1e-12)
    shifted, _ = kid_from_features(a, a + 0.5, num_subsets=5)
    assert abs(mean) < 0.05 and shifted > 20 * abs(mean)
    b = rng.normal(size=(400, 16))  # same distribution, new sample
    assert abs(kid_from_features(a, b, num_subsets=10)[0]) < 0.05


def test_kid_matches_clean_fid_kernel_distance_and_leaves_the_global_rng_alone():
    from cleanfid.fid import kernel_distance

    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(300, 8)), rng.normal(0.3, 1.0, size=(250, 8))
    np.random.seed(11)
    reference = kernel_distance(a, b, num_subsets=6, max_subset_size=100)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    mean, std = kid_from_features(a, b, num_subsets=6, max_subset_size=100, seed=11)
    assert np.array_equal(np.random.get_state()[1], before)
    assert mean == pytest.approx(reference, rel=1e-12) and std > 0
    assert kid_from_features(a, b, num_subsets=6, max_subset_size=100, seed=11) == (mean, std)
    assert kid_from_features(a, b, num_subsets=6, max_subset_size=100, seed=12)[0] != mean
    assert math.isnan(kid_from_features(a, b, num_subsets=1)[1])
    with pytest.raises(ValueError):
        kid_from_features(a, np.zeros((10, 3)))


# ----------------------------------------------------------------------------- offline
@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    for name in ("socket", "create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, refuse)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # untrained net, see above
def test_metrics_make_no_network_access(no_network, monkeypatch, tmp_path):
    from l2l import extractors

    torch.manual_seed(0)
    net = DomainClassifier(n_classes=4, feature_dim=16, width=8)
    ex = extractors.get_extractor("domain", net=net)
    gen = torch.Generator().manual_seed(0)
    a, b = torch.rand(40, 3, 32, 32, generator=gen), torch.rand(40, 3, 32, 32, generator=gen)
    fa, pa = ex.features_and_probs(a)
    fb = ex.features(b)
    assert math.isfinite(fid_from_features(fa, fb))
    assert all(math.isfinite(v) for v in kid_from_features(fa, fb, num_subsets=4))
    assert 1.0 <= inception_score(pa, splits=4)[0] <= 4.0
    assert np.all(np.abs(pair_cosine(fa, fb)) <= 1.0)
    # the Inception lookup finds nothing and says so, without trying to download
    monkeypatch.setattr(extractors, "cleanfid_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(extractors, "fid_helper_file", lambda: None)
    with pytest.raises(FileNotFoundError, match="Nothing is downloaded"):
        extractors.get_extractor("inception")


def test_metrics_is_pure():
    import subprocess
    import sys

    code = "import sys, l2l.metrics; print(sorted(m for m in sys.modules if m.startswith('l2l.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['l2l.images', 'l2l.metrics']"  # no network, config or data


def test_full_reference_replaces_the_full_image_fid_and_keeps_the_matched_one():
    from l2l.extractors import Extractor

    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(12, 3, 16, 16, generator=gen), torch.rand(12, 3, 16, 16, generator=gen)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 4:12, 4:12] = 1
    ext = Extractor("toy", lambda im: (im.flatten(1)[:, :6].double().numpy(), None))
    plain = completion_metrics(y, x, mask, ext, n_boot=4, seed=0)
    ref = torch.rand(12, 6, generator=gen).double().numpy()
    full = completion_metrics(y, x, mask, ext, n_boot=4, seed=0, full_reference=ref)
    assert full["fidmatched_full"] == plain["fid_full"] and full["fid_hole"] == plain["fid_hole"]
    assert full["fid_full"] == pytest.approx(fid_from_features(ext.features(y), ref))
    assert "fidmatched_full" not in plain
    with pytest.raises(ValueError, match="full_reference has 3 rows for 12 images"):
        completion_metrics(y, x, mask, ext, n_boot=4, seed=0, full_reference=ref[:3])
