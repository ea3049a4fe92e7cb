"""Varshney & Torra's tables and claims: rankings, summaries and every claim rule on made-up
tables; the run-store pieces they rely on at smoke scale."""

import math

import pandas as pd
import pytest
import torch

from l2l import config
from l2l.experiments import claims, p2_ablation, p2_audit, p2_autoencoder, p2_claims, p2_tables
from l2l.experiments import store
from l2l.unlearn.varshney import dp_noise


def _i2i(values: dict[str, tuple[float, float]]) -> pd.DataFrame:
    rows = [{"family": "mae", "method": m, "task": "centre_half", "subset": s, "region": "hole",
             "metric": "fid", "value": v, "std": 0.1, "seed_sd": math.nan, "n_seeds": 1,
             "n_images": 500}
            for m, (f, r) in values.items() for s, v in (("forget", f), ("retain", r))]
    return pd.DataFrame(rows)


def test_rankings_read_li_directions_and_distance_to_retrain():
    t = _i2i({"original": (4.0, 4.0), "retrain": (6.0, 5.0), "li2024": (20.0, 4.5),
              "varshney2025": (6.1, 5.1), "max_loss": (5.0, 6.0)})
    r = p2_tables.rankings(t).set_index("method")
    assert r.loc["li2024", "li_rank"] == 1  # forgets most, keeps retain best
    assert r.loc["varshney2025", "retrain_rank"] == 1  # nearest the retrained model
    assert r.loc["varshney2025", "retrain_distance"] == pytest.approx(0.1 / 6 + 0.1 / 5)
    assert r.loc["li2024", "forget_ratio"] == pytest.approx(5.0)
    a = p2_tables.ranking_agreement(r.reset_index()).iloc[0]
    assert a["best_li"] == "li2024" and a["best_retrain"] == "varshney2025"
    assert not a["agree_on_best"] and -1 <= a["kendall_tau"] <= 1


def _ae_rows(gaps: dict[str, float], *, seeds=(0, 1, 2), split="class_5") -> pd.DataFrame:
    """Per-seed AE-study rows: retrain value 1.0 on every forget subset / metric; each method's
    value = 1 + its gap (+ 0.01 * seed)."""
    rows = []
    for m, g in gaps.items():
        for seed in seeds:
            for subset, metric in p2_claims.CLOSENESS + (("retain", "mse"),):
                v = 1.0 + g + 0.01 * seed
                rows.append({"split": split, "level": "class", "method": m, "seed": seed,
                             "subset": subset, "metric": metric, "value": v, "std": 0.01,
                             "retrain": 1.0 + 0.01 * seed, "gap": g, "n_images": 500})
    return pd.DataFrame(rows)


def test_ae_summary_has_seed_sd_and_gaps():
    s = p2_autoencoder.summarise(_ae_rows({"retrain": 0.0, "li2024": 0.5}))
    li = s[(s["method"] == "li2024") & (s["subset"] == "forget") & (s["metric"] == "mse")].iloc[0]
    assert li["n_seeds"] == 3 and li["gap"] == pytest.approx(0.5) and li["abs_gap"] == 0.5
    assert li["seed_sd"] == pytest.approx(0.01) and li["paper_value_status"] == "not available"
    w = p2_autoencoder.wide(s, "class_5")
    assert w.loc["li2024", ("forget-test", "MSE")] == "1.5100 ± 0.0100 (+0.5000)"
    assert w.loc["li2024", ("", "OOD AUROC")] == "–"  # not in these rows


def test_seed_config_varies_the_training_seed_on_one_data_set(smoke_cfg):
    same = p2_autoencoder.seed_config(smoke_cfg, smoke_cfg.seed)
    assert same is smoke_cfg  # shares its runs with the other notebooks
    other = p2_autoencoder.seed_config(smoke_cfg, 2)
    assert other.seed == 2 and config.data_seed(other) == smoke_cfg.seed
    a, b = store.data(smoke_cfg)[0], store.data(other)[0]
    assert torch.equal(a.x_train, b.x_train)


def test_p2b_compares_forget_gaps_per_split():
    good = p2_claims.claim_p2b(_ae_rows({"retrain": 0.0, "li2024": 0.5, "varshney2025": 0.1}))
    assert good[0]["passed"] and good[0]["claim_id"] == "P2-b[class_5]"
    assert good[0]["n_seeds"] == 3 and good[0]["paper"] == p2_claims.P2
    bad = p2_claims.claim_p2b(_ae_rows({"retrain": 0.0, "li2024": 0.1, "varshney2025": -0.3}))
    assert not bad[0]["passed"]  # |gap| counts, not its sign


def _pipeline(**kw) -> pd.DataFrame:
    row = {"family": "mae", "lam": 0.01, "lambda_source": "retrain", "stage1_steps": 30,
           "reached": True, "d_at_stop": 0.012, "d_after_retention": 0.006,
           "retain_mse_original": 0.0100, "retain_mse_varshney": 0.0110, "n_images": 500} | kw
    return pd.DataFrame([row])


def test_p2a_thresholds():
    assert p2_claims.claim_p2a(_pipeline())[0]["passed"]
    assert not p2_claims.claim_p2a(_pipeline(reached=False))[0]["passed"]
    assert not p2_claims.claim_p2a(_pipeline(retain_mse_varshney=0.0116))[0]["passed"]  # +16 %
    assert not p2_claims.claim_p2a(_pipeline(d_after_retention=0.0049))[0]["passed"]  # < 50 %


def _audit(varshney_bsr: float) -> pd.DataFrame:
    rows = []
    for seed in (0, 1, 2):
        rows.append({"model": "retrain", "method": "retrain", "lam_rule": "", "seed": seed,
                     "bsr": 0.0, "bsr_after_clean_ft": 0.01, "poisoned_mia_auc": 0.1})
        for rule in ("retrain", "kappa_e0"):
            rows.append({"model": f"v {rule}", "method": "varshney2025", "lam_rule": rule,
                         "seed": seed, "bsr": varshney_bsr if rule == "retrain" else 0.5,
                         "bsr_after_clean_ft": 0.02, "poisoned_mia_auc": 0.12})
    return pd.DataFrame(rows)


def test_p2c_one_row_per_lambda_rule():
    rows = {r["claim_id"]: r for r in p2_claims.claim_p2c(_audit(0.04))}
    assert rows["P2-c[retrain]"]["passed"] and not rows["P2-c[kappa_e0]"]["passed"]
    assert not p2_claims.claim_p2c(_audit(0.06))[0]["passed"]


def test_claims_collect_leaves_out_p2_until_its_tables_exist(monkeypatch):
    p1 = pd.DataFrame([{c: "x" for c in claims.CLAIM_COLUMNS}])
    monkeypatch.setattr(claims, "p1_claims", lambda scale, read=None: p1)
    assert len(claims.collect("smoke")) == 1  # no 2N table in the empty output root


def test_decisive_knob_is_the_widest_range():
    t = pd.DataFrame({"family": ["ae"] * 4, "knob": ["kappa", "kappa", "ft_steps", "ft_steps"],
                      "value": [0.5, 2, 150, 900], "forget_mse": [0.01, 0.05, 0.02, 0.021]})
    d = p2_ablation.decisive_knob(t)
    assert d.iloc[0]["knob"] == "kappa" and d.iloc[0]["decides"] and not d.iloc[1]["decides"]
    assert d.iloc[0]["range"] == pytest.approx(0.04)


@pytest.fixture
def cfg(smoke_cfg):
    return config.replace(smoke_cfg, unlearn__steps=2)


def test_dp_sweep_noise_is_the_methods_own(cfg):
    plain = store.unlearned(cfg, "autoencoder", "varshney2025")
    noisy = store.unlearned(cfg, "autoencoder", "varshney2025", dp_sigma=1e-3)
    model = plain.model
    model.requires_grad_(True)
    dp_noise(model, 1e-3, plain.cfg)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), noisy.model.parameters()))


def test_epsilon_delta_rows_are_labelled_empirical(cfg):
    table, prov = p2_ablation.epsilon_delta(cfg, sigmas=(0.0, 1e-3, 10.0))
    assert table["epsilon"].iloc[0] == math.inf and not table["valid"].iloc[0]
    assert table["label"].str.startswith(p2_ablation.EPSILON_LABEL).all()
    assert table["sensitivity"].nunique() == 1 and table["sensitivity"].iloc[0] > 0
    big = table[table["sigma"] == 10.0].iloc[0]
    assert big["valid"] == (big["epsilon"] < 1)
    assert prov["paper_value"].startswith("not available")


def test_one_original_serves_every_unpoisoned_split_but_completions_do_not_mix(cfg):
    a = store.unlearned(cfg, "autoencoder", "original")
    b = store.unlearned(cfg, "autoencoder", "original", **p2_autoencoder.AE_SPLITS["class_1"])
    assert all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))
    assert a.key != b.key  # completions and scores are keyed by the split
    assert store.test_images(b.cfg, "forget").shape[0] < store.test_images(a.cfg, "forget").shape[0]
    p = store.unlearned(cfg, "autoencoder", "original", **p2_audit.POISON_SPLIT)
    assert not all(torch.equal(x, y) for x, y in zip(a.model.parameters(), p.model.parameters()))
