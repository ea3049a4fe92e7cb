"""Membership inference, OOD AUROC, backdoor success rate and t-SNE (CPU, offline, seconds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from l2l.data import make_mask
from l2l.evaluation import mean_fill
from l2l.metrics import hole_mse
from l2l.poison import target_image
from l2l.privacy import (
    backdoor_success_rate,
    gaussian_epsilon,
    mia_auc,
    ood_auroc,
    parameter_distance,
    per_sample_loss,
    tsne_embed,
)


class PaintTarget(nn.Module):
    """Always emits the backdoor output: the hole painted in the target colour."""

    def __init__(self, hole: str) -> None:
        super().__init__()
        self.hole = hole

    def complete(self, x: torch.Tensor, mask: torch.Tensor, *, generator=None) -> torch.Tensor:
        return target_image(x, self.hole)


class ReturnTruth(nn.Module):
    """Returns its input, i.e. the true hole content (the trigger lies outside the hole)."""

    def complete(self, x: torch.Tensor, mask: torch.Tensor, *, generator=None) -> torch.Tensor:
        return x.clone()


# ----------------------------------------------------------------------------- MIA and OOD AUROC
def test_mia_auc_is_one_half_for_identically_distributed_losses():
    rng = np.random.default_rng(0)
    members, others = rng.gamma(2.0, 0.01, 20_000), rng.gamma(2.0, 0.01, 20_000)
    # the AUC's standard error at n = m = 2e4 is sqrt((n + m + 1) / (12 n m)) ~ 0.003
    assert mia_auc(members, others) == pytest.approx(0.5, abs=0.015)
    assert mia_auc(np.full(50, 0.1), np.full(70, 0.1)) == 0.5  # ties count half


def test_mia_auc_is_one_for_separable_losses_and_zero_when_reversed():
    rng = np.random.default_rng(1)
    low, high = rng.uniform(0.0, 0.01, 300), rng.uniform(0.02, 0.05, 200)
    assert mia_auc(low, high) == 1.0  # members (lower loss) always detected
    assert mia_auc(high, low) == 0.0
    with pytest.raises(ValueError):
        mia_auc(low, np.array([]))


def test_ood_auroc_direction_and_chance_level():
    rng = np.random.default_rng(2)
    retain_err, forget_err = rng.uniform(0, 1, 400), rng.uniform(2, 3, 300)
    assert ood_auroc(retain_err, forget_err) == 1.0
    assert ood_auroc(forget_err, retain_err) == 0.0
    same = rng.normal(size=(2, 20_000))
    assert ood_auroc(same[0], same[1]) == pytest.approx(0.5, abs=0.015)


# ----------------------------------------------------------------------------- per-sample loss
def test_per_sample_loss_is_the_hole_mse_of_the_completion(smoke_cfg):
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(per_sample_loss(ReturnTruth(), x, smoke_cfg), np.zeros(6))
    mask = make_mask(smoke_cfg.eval.hole, 32)
    expected = hole_mse(mean_fill(x, mask), x, mask).double().numpy()
    loss = per_sample_loss("mean fill", x, smoke_cfg)
    assert loss.shape == (6,) and loss.dtype == np.float64
    assert np.allclose(loss, expected)
    u8 = (x * 255).round().to(torch.uint8)
    assert per_sample_loss("mean fill", u8, smoke_cfg).shape == (6,)


# ----------------------------------------------------------------------------- backdoor audit
def test_backdoor_success_rate_is_one_for_the_target_and_zero_for_the_truth(smoke_cfg):
    x = torch.rand(12, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    hole = smoke_cfg.eval.hole
    assert backdoor_success_rate(PaintTarget(hole), x, smoke_cfg) == 1.0
    assert backdoor_success_rate(ReturnTruth(), x, smoke_cfg) == 0.0
    assert backdoor_success_rate(ReturnTruth(), (x * 255).to(torch.uint8), smoke_cfg) == 0.0


def test_backdoor_success_rate_counts_a_fraction(smoke_cfg):
    class HalfTarget(nn.Module):
        def complete(self, x, mask, *, generator=None):
            out = x.clone()
            out[::2] = target_image(x[::2], smoke_cfg.eval.hole)
            return out

    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    assert backdoor_success_rate(HalfTarget(), x, smoke_cfg) == 0.5


# ----------------------------------------------------------------------------- t-SNE
def test_tsne_embed_is_two_d_seeded_and_keeps_clusters_apart():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, (30, 16)), rng.normal(12, 1, (30, 16))
    emb = tsne_embed(np.r_[a, b], perplexity=10, seed=0)
    assert emb.shape == (60, 2) and emb.dtype == np.float64 and np.isfinite(emb).all()
    assert np.array_equal(emb, tsne_embed(np.r_[a, b], perplexity=10, seed=0))
    d = ((emb[:, None] - emb[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    same_cluster = (d.argmin(1) < 30) == (np.arange(60) < 30)
    assert same_cluster.all()  # every point's nearest neighbour is in its own cluster
    centre_gap = np.linalg.norm(emb[:30].mean(0) - emb[30:].mean(0))
    assert centre_gap > 3 * max(emb[:30].std(0).max(), emb[30:].std(0).max())
    with pytest.raises(ValueError):
        tsne_embed(a[:10], perplexity=20)


def test_gaussian_epsilon_matches_a_hand_worked_value():
    # ln(1.25 / 1e-5) = ln 1.25 + 5 ln 10 = 0.223144 + 11.512925 = 11.736069;
    # sqrt(2 x 11.736069) = sqrt(23.472138) = 4.844805; epsilon = Delta x 4.844805 / sigma
    e = gaussian_epsilon(sigma=1.0, sensitivity=0.1, delta=1e-5)
    assert e["epsilon"] == pytest.approx(0.4844805, abs=1e-6) and e["valid"]
    big = gaussian_epsilon(sigma=0.1, sensitivity=0.1)
    assert big["epsilon"] == pytest.approx(4.844805, abs=1e-5) and not big["valid"]  # eps >= 1
    assert gaussian_epsilon(0.0, 0.1)["epsilon"] == math.inf
    with pytest.raises(ValueError, match="0 < delta < 1"):
        gaussian_epsilon(1.0, 0.1, delta=0.0)


def test_parameter_distance_is_the_l2_norm_of_the_weight_difference():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    with torch.no_grad():
        for p, q in zip(a.parameters(), b.parameters()):
            p.zero_()
            q.fill_(0.5)
    assert parameter_distance(a, b) == pytest.approx(0.5 * math.sqrt(8))  # 6 weights + 2 biases
    assert parameter_distance(a, a) == 0
    with pytest.raises(ValueError, match="different parameters"):
        parameter_distance(a, torch.nn.Linear(3, 3, bias=False))
