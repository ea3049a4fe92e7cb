"""The run store: one model and one set of completions per config, shared by every artefact."""

import pytest
import torch

from l2l import config
from l2l.data import load_data, unseen_photos
from l2l.experiments import store


@pytest.fixture
def cfg(smoke_cfg):
    return config.replace(smoke_cfg, unlearn__steps=2)


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sb = b.state_dict()
    return all(torch.equal(v, sb[k]) for k, v in a.state_dict().items())


def test_second_call_returns_the_identical_model_and_completions(cfg):
    first = store.unlearned(cfg, "mae", "li2024")
    out1 = store.completions(first, "centre_half", "forget")
    again = store.unlearned(cfg, "mae", "li2024")
    assert _same(first.model, again.model) and again.key == first.key
    assert again.wall_s == first.wall_s > 0  # the stored time, not a new measurement
    out2 = store.completions(again, "centre_half", "forget")
    assert out1.dtype == torch.uint8 and torch.equal(out1, out2)
    assert out1.shape == store.test_images(cfg, "forget").shape
    assert len(again.history) and {"loss_forget", "loss_retain"} <= set(again.history)


def test_a_config_change_recomputes(cfg):
    base = store.unlearned(cfg, "mae", "li2024")
    other_alpha = store.unlearned(cfg, "mae", "li2024", alpha=0.5)
    other_seed = store.unlearned(cfg, "mae", "li2024", seed_offset=1)
    assert other_alpha.key != base.key and other_seed.key != base.key
    assert not _same(base.model, other_alpha.model) and not _same(base.model, other_seed.model)
    assert other_seed.cfg.unlearn.seed_offset == 1 and other_alpha.cfg.unlearn.alpha == 0.5
    # the original is trained once: every unlearning run starts from the same weights
    original = store.unlearned(cfg, "mae", "original")
    assert original.key == store.unlearned(cfg, "mae", "original", alpha=0.5).key


def test_force_recomputes_the_same_run(cfg):
    a = store.unlearned(cfg, "mae", "li2024")
    b = store.unlearned(cfg, "mae", "li2024", force=True)
    assert _same(a.model, b.model)  # seeded: a forced rerun gives the same weights


def test_original_and_retrain_are_runs_too(cfg):
    orig = store.unlearned(cfg, "mae", "original")
    retrain = store.unlearned(cfg, "mae", "retrain")
    assert orig.name == "original" and retrain.name == "retrain"
    assert not _same(orig.model, retrain.model) and orig.wall_s > 0


def test_unknown_method_and_subset_are_refused_before_compute(cfg):
    with pytest.raises(ValueError, match="unknown method 'li2025'"):
        store.unlearned(cfg, "mae", "li2025")
    with pytest.raises(ValueError, match="unknown model family"):
        store.unlearned(cfg, "gan", "li2024")
    with pytest.raises(ValueError, match="unknown subset"):
        store.test_images(cfg, "proxy")


def test_proxy_photos_are_never_forget_or_retain_images(cfg):
    images, split = load_data(cfg)
    proxy = store.retain_set(split, config.replace(cfg, retain_source="proxy"))
    assert proxy.shape == (len(split.forget), 3, 32, 32) and proxy.dtype == torch.uint8
    flat = lambda x: {bytes(r.numpy().tobytes()) for r in x}  # noqa: E731
    seen = flat(images.x_train) | flat(images.x_test)
    assert not flat(proxy) & seen
    # and no near-duplicates: every proxy crop differs from every training image by an RMS of
    # more than 0.01 (measured minimum 0.031 at smoke, 0.023 at small; two overlapping training
    # crops of one photo can be 0.0003 apart)
    unit = lambda x: x.float().flatten(1) / (255 if x.dtype == torch.uint8 else 1)  # noqa: E731
    rms = torch.cdist(unit(proxy), unit(images.x_train)) / proxy[0].numel() ** 0.5
    assert rms.min() > 0.01


def test_proxy_photos_are_deterministic_and_spread_over_the_photos(cfg):
    a, b = unseen_photos(cfg.data, 40, seed=0), unseen_photos(cfg.data, 40, seed=0)
    assert torch.equal(a, b) and not torch.equal(a, unseen_photos(cfg.data, 40, seed=1))
    with pytest.raises(ValueError, match="at least one"):
        unseen_photos(cfg.data, 0)


def test_other_classes_proxy_needs_classes_outside_forget_and_retain(cfg):
    _, split = load_data(cfg)
    real = config.replace(cfg, retain_source="proxy", proxy="other_classes")
    with pytest.raises(ValueError, match="none are left"):
        store.retain_set(split, real)
    with pytest.raises(ValueError, match="unlearn.proxy must be one of"):
        config.replace(cfg, proxy="places_val")


def test_seed_offset_zero_keeps_the_single_seed_draws(cfg):
    assert config.unlearn_seed(cfg) == cfg.seed
    assert config.unlearn_seed(config.replace(cfg, seed_offset=2)) == cfg.seed + 2 * config.SEED_STRIDE
    with pytest.raises(ValueError, match="seed_offset"):
        config.replace(cfg, seed_offset=-1)


def test_varshney_runs_keep_how_lambda_was_set(cfg):
    run = store.unlearned(cfg, "mae", "varshney2025")
    assert run.history.attrs["lambda_source"].startswith("retrain: d(original, retrained)")
    again = store.unlearned(cfg, "mae", "varshney2025")
    assert again.history.attrs == run.history.attrs and again.cfg.unlearn.lam > 0
    # the retrain-free rule: the method sets lambda = kappa * e0 itself (a different run)
    free = store.unlearned(cfg, "mae", "varshney2025", lam_rule="kappa_e0")
    assert free.history.attrs["lambda_source"].startswith("kappa*e0")
    assert free.cfg.unlearn.lam == 0 and free.key != run.key
    assert free.history["lam"].iloc[0] != run.history["lam"].iloc[0]


def test_key_stable_defaults_leave_older_cache_keys_unchanged(cfg):
    key = config.cache_key(cfg, "unlearn")
    assert "lam_rule" not in key["unlearn"]  # at its default: keys of earlier runs still match
    other = config.cache_key(config.replace(cfg, lam_rule="kappa_e0"), "unlearn")
    assert other["unlearn"]["lam_rule"] == "kappa_e0"
