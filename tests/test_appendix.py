"""Li et al.'s appendix knobs (noise type, retain amount, crop tasks) and the rules of P1-f and
T-a ... T-e on made-up tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from l2l import config
from l2l.experiments import p1_appendix, p1_theory, store
from l2l.models import build_model
from l2l.unlearn.ops import noise_image, ops_for


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    return 0.2 + 0.5 * torch.rand(16, 3, 32, 32, generator=gen)  # values in [0.2, 0.7)


def test_uniform_noise_is_u01_per_pixel(batch):
    ae = build_model("autoencoder", "cifar10")
    n = noise_image(ae, batch, torch.Generator().manual_seed(1), "uniform")
    assert n.shape == batch.shape and n.min() >= 0 and n.max() < 1
    assert n.mean().item() == pytest.approx(0.5, abs=0.01)  # 49k pixels: s.e. 0.0013
    assert n.std().item() == pytest.approx(1 / math.sqrt(12), abs=0.01)


def test_constant_noise_is_the_batch_mean_everywhere(batch):
    n = noise_image(build_model("autoencoder", "cifar10"), batch, torch.Generator(), "constant")
    assert torch.allclose(n, torch.full_like(batch, batch.mean().item()))


def test_normal_noise_has_the_batch_statistics(batch):
    n = noise_image(build_model("autoencoder", "cifar10"), batch,
                    torch.Generator().manual_seed(2), "normal")
    assert n.mean().item() == pytest.approx(batch.mean().item(), abs=0.005)
    assert n.std().item() == pytest.approx(batch.std().item(), rel=0.05)  # clamping barely bites
    with pytest.raises(ValueError, match="unknown noise type 'pink'"):
        noise_image(build_model("autoencoder", "cifar10"), batch, torch.Generator(), "pink")


def test_diffusion_forget_input_follows_the_noise_type(batch, smoke_cfg):
    model = build_model("diffusion", "tiny")
    for kind in ("uniform", "constant"):
        cfg = config.replace(smoke_cfg, noise_type=kind)
        step = ops_for(model, cfg).draw(model, batch, torch.Generator().manual_seed(0))
        eps = step["forget_eps"]  # in Palette's [-1, 1] space
        assert eps.min() >= -1 and eps.max() < 1
        if kind == "constant":
            assert torch.allclose(eps, torch.full_like(eps, 2 * batch.mean().item() - 1))
    normal = ops_for(model, smoke_cfg).draw(model, batch, torch.Generator().manual_seed(0))
    assert "forget_eps" not in normal  # the default keeps Palette's eps


def test_bad_noise_type_and_retain_fraction_are_refused():
    with pytest.raises(ValueError, match="noise_type must be one of normal, uniform, constant"):
        config.preset("smoke", noise_type="pink")
    with pytest.raises(ValueError, match=r"retain_fraction must be in \(0, 1\]"):
        config.preset("smoke", retain_fraction=0.0)


def test_defaults_of_the_new_fields_keep_the_cache_keys():
    cfg = config.preset("small")
    key = config.cache_key(cfg, "unlearn")["unlearn"]
    assert "noise_type" not in key and "retain_fraction" not in key
    other = config.cache_key(config.replace(cfg, retain_fraction=0.5), "unlearn")["unlearn"]
    assert other["retain_fraction"] == 0.5


def test_retain_fraction_takes_an_evenly_spaced_share(smoke_cfg):
    cfg = config.for_family(smoke_cfg, "mae")
    _, split = store.data(cfg)
    part = store.retain_set(split, config.replace(cfg, retain_fraction=0.25))
    n = len(split.retain)
    assert len(part) == round(0.25 * n)
    assert torch.equal(part[0], split.retain[0]) and torch.equal(part[-1], split.retain[-1])
    assert store.retain_set(split, cfg) is split.retain


def test_crop_tasks_reuse_the_table_tasks():
    assert p1_appendix.crop_task(8) == "centre_half"
    assert p1_appendix.crop_task(4) == "centre_quarter"
    assert p1_appendix.crop_task(6) == "centre_6"


def _retain_table(full: float, part: float, std: float = 0.1) -> pd.DataFrame:
    rows = []
    for label, retain in (("original", 10.0), ("0", 12.0), ("0.1", part), ("0.5", full),
                          ("1", full)):
        for subset, value in (("forget", 20.0), ("retain", retain)):
            rows.append({"family": "mae", "retain_fraction": label, "subset": subset,
                         "region": "hole", "metric": "fid", "value": value, "std": std})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("part,passed", [(10.5, True), (11.5, False)])
def test_p1f_rule(part, passed):
    row = p1_appendix.claim_p1f(_retain_table(10.0, part))[0]
    assert row["claim_id"] == "P1-f[mae]" and row["passed"] is passed


def _theory_tables(max_loss_growth: float, mi_after: float):
    kl = pd.DataFrame([{"case": "isotropic", "d": 2, "sigma": 1.0, "distance": 1.0, "mc": 0.501,
                        "exact": 0.5, "mc_se": 0.003, "lo": 0.5, "hi": 0.5},
                       {"case": "anisotropic", "d": 16, "sigma": math.nan, "distance": 1.0,
                        "mc": 0.6, "exact": 0.6, "mc_se": 0.003, "lo": 0.25, "hi": 1.0}])
    dpi = pd.DataFrame([{"map": "invertible", "shift": 1.0, "embedding_kl": 0.5, "output_kl": 0.52},
                        {"map": "quantiser", "shift": 1.0, "embedding_kl": 0.5, "output_kl": 0.4}])
    steps = 100
    unb = pd.DataFrame(
        [{"method": "max_loss", "step": s, "objective": -s, "loss_forget": 1 + (max_loss_growth - 1)
          * s / (steps - 1), "loss_retain": 0.1, "weight_norm": 1 + s / 50} for s in range(steps)]
        + [{"method": "li2024", "step": s, "objective": 0.1 + math.exp(-s / 5), "loss_forget": 0.1,
            "loss_retain": 0.0, "weight_norm": 1.0} for s in range(steps)])
    mi = pd.DataFrame([{"model": m, "subset": s, "mi": v, "distance_to_mean_noise_embedding": 1.0}
                       for m, s, v in (("original", "forget", 2.0), ("li2024", "forget", mi_after),
                                       ("original", "retain", 2.0), ("li2024", "retain", 1.9))])
    emb = pd.DataFrame([{"what": w, "to_mean_noise": t, "forget_nn_to_retain": nn, "n_images": 8}
                        for w, t, nn in (("original embeddings", 1.0, 0.1),
                                         ("li2024 embeddings", 0.5, 0.2),
                                         ("Eq. 10 target E0(noise)", 0.1, 0.3),
                                         ("Random-Encoder target", 1.0, 0.9))])
    return kl, dpi, unb, mi, emb


def test_theory_claim_rules_pass_and_fail():
    rows = {r["claim_id"]: r["passed"] for r in p1_theory.claim_rows(*_theory_tables(50.0, 0.1))}
    assert rows == {"T-a": True, "T-b": True, "T-c": True, "T-d": True, "T-e": True}
    rows = {r["claim_id"]: r["passed"] for r in p1_theory.claim_rows(*_theory_tables(2.0, 1.0))}
    assert not rows["T-c"] and not rows["T-d"] and rows["T-a"]


def test_toy_unlearning_refuses_an_unknown_method():
    model, x, y = p1_theory.trained_toy("smoke")
    with pytest.raises(ValueError, match="unknown toy method"):
        p1_theory.unlearn_toy(model, x, y, "retrain", steps=1)


def test_data_processing_demo_is_finite_and_never_raises_the_kl():
    t = p1_theory.data_processing("smoke")
    assert set(t["map"]) == {"invertible", "random MLP", "quantiser"}
    assert t["output_kl"].map(math.isfinite).all()
    q = t[t["map"] == "quantiser"]
    assert (q["output_kl"] <= q["embedding_kl"]).all() and (q["output_kl"] > 0).all()


def test_an_mae_that_sees_no_patch_is_skipped_not_failed():
    mae = build_model("mae", "tiny")  # 32 px, 4-px patches
    assert p1_appendix.sees_something(mae, "outpaint_12", 32)
    assert not p1_appendix.sees_something(mae, "outpaint_13", 32)
    assert p1_appendix.sees_something(build_model("autoencoder", "cifar10"), "outpaint_13", 32)


def test_sweeps_take_every_k_except_at_smoke_scale():
    assert p1_appendix._ks(p1_appendix.OUTPAINT_KS, "small") == tuple(range(1, 14))
    assert p1_appendix._ks(p1_appendix.OUTPAINT_KS, "smoke") == (1, 7, 13)  # 13: the MAE skip
    assert p1_appendix._ks(p1_appendix.CROP_KS, "paper") == tuple(range(2, 13))
