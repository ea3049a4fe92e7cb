"""Varshney & Torra's (epsilon, delta) study and the lambda / budget ablation (l2l's, not the paper's).

**(epsilon, delta).** The paper states an (epsilon, delta)-unlearning guarantee for
gradient-ascent updates (Varshney & Torra 2025, abstract); its mechanism and constants are not
known.
Here the optional Gaussian perturbation ``unlearn.dp_sigma`` is swept over ``DP_SIGMAS``: the
``varshney2025`` AutoEncoder (shared class split, seed 0) gets N(0, sigma^2) on every parameter
(exactly what the method does with ``dp_sigma`` set: same generator, ``perturb``), and for each
sigma the table gives forget / retain hole MSE and their gap to the retrained model, and the
epsilon at delta = 1e-5 that the Gaussian mechanism would give with Delta = the *measured*
||theta_unlearned - theta_retrain|| (``privacy.gaussian_epsilon``). That bound needs epsilon < 1
(``valid``); every row is labelled "empirical, not a guarantee", and none is the paper's.

**Ablation.** Each of lambda's scale kappa (with the retrain-free rule lambda = kappa * e0), the
check interval k, the stage-2 steps and the keep-OOD hinge weight is varied alone around the
small-scale default (``ABLATION``), on the AutoEncoder and the MAE; the outcome is the
forget-test hole MSE (and its gap to retrain), the retain-test hole MSE, d at the stop and after
retention. ``decisive_knob`` names, per family, the knob whose range moves the forget-test hole
MSE most.
"""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd

from l2l.config import RunConfig
from l2l.data import make_mask
from l2l.evaluation import complete
from l2l.experiments.p1_figures import FIG_TASK
from l2l.experiments.store import completions, test_images, unlearned
from l2l.io import load_or_compute
from l2l.metrics import hole_mse
from l2l.models import frozen_part
from l2l.privacy import gaussian_epsilon, parameter_distance
from l2l.unlearn.varshney import dp_noise

DP_SIGMAS = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
DELTA = 1e-5
EPSILON_LABEL = "empirical, not a guarantee"
# knob -> the values tried (the small default is among them); "kappa" runs with lam_rule kappa_e0
ABLATION: dict[str, tuple[Any, ...]] = {
    "kappa": (0.5, 1.0, 2.0),
    "ga_check_every": (5, 10, 20),
    "ft_steps": (150, 450, 900),
    "ft_hinge": (0.0, 1.0, 3.0),
}
ABLATION_FAMILIES = ("autoencoder", "mae")


def _mse(model_or_run, cfg: RunConfig, subset: str) -> float:
    truth = test_images(cfg, subset)
    mask = make_mask(FIG_TASK, truth.shape[-1])
    out = (completions(model_or_run, FIG_TASK, subset) if hasattr(model_or_run, "key")
           else complete(model_or_run, truth, mask, cfg))
    return hole_mse(out, truth, mask).mean().item()


def epsilon_delta(cfg: RunConfig, *, sigmas: tuple[float, ...] = DP_SIGMAS,
                  family: str = "autoencoder") -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per sigma: sensitivity (measured), epsilon, valid, label, forget / retain hole
    MSE, their gaps to retrain, and the retrained model's values."""
    run = unlearned(cfg, family, "varshney2025")
    retrain = unlearned(cfg, family, "retrain")
    delta_w = parameter_distance(run.model, retrain.model)
    ref = {s: _mse(retrain, retrain.cfg, s) for s in ("forget", "retain")}
    rows = []
    for sigma in sigmas:
        key = run.key | {"method": run.name, "dp_sweep": {"sigma": sigma, "task": FIG_TASK}}

        def compute(sigma=sigma) -> dict[str, float]:
            model = copy.deepcopy(run.model)
            model.requires_grad_(True)
            if (part := frozen_part(model)) is not None:
                part.requires_grad_(False)
            if sigma > 0:  # the method's own noise: what dp_sigma = sigma gives
                dp_noise(model, sigma, run.cfg)
            return {s: _mse(model.eval(), run.cfg, s) for s in ("forget", "retain")}

        m = load_or_compute(key, "dp_row.pt", compute, scale=cfg.scale)
        eps = gaussian_epsilon(sigma, delta_w, DELTA)
        rows.append({"family": family, "sigma": sigma, "sensitivity": delta_w,
                     "epsilon": eps["epsilon"], "delta": DELTA, "valid": eps["valid"],
                     "label": EPSILON_LABEL if eps["valid"] else
                     f"{EPSILON_LABEL}; epsilon >= 1: the Gaussian-mechanism bound does not hold",
                     "forget_mse": m["forget"], "retain_mse": m["retain"],
                     "forget_gap": m["forget"] - ref["forget"],
                     "retain_gap": m["retain"] - ref["retain"],
                     "retrain_forget_mse": ref["forget"], "retrain_retain_mse": ref["retain"]})
    prov = {"extractor": "none (hole MSE only)", "family": family,
            "method": "varshney2025 (lam_rule retrain), then N(0, sigma^2) on "
            "every parameter", "task": FIG_TASK, "delta": DELTA,
            "sensitivity": "measured ||theta_unlearned - theta_retrain||_2 (sigma = 0)",
            "epsilon": "Gaussian mechanism, Dwork & Roth Thm A.1: epsilon = Delta sqrt(2 ln(1.25 "
                       "/ delta)) / sigma, valid for epsilon < 1", "label": EPSILON_LABEL,
            "n_images": len(test_images(run.cfg, "forget")),
            "paper_value": "not available: the paper's (epsilon, delta) is not known"}
    return pd.DataFrame(rows), prov


def ablation(cfg: RunConfig, *, families: tuple[str, ...] = ABLATION_FAMILIES,
             knobs: dict[str, tuple[Any, ...]] = ABLATION) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per (family, knob, value): lambda, stage-1 steps, reached, d at stop / after
    retention, forget-test and retain-test hole MSE, forget gap to retrain."""
    from l2l.bench import varshney_summary

    rows = []
    for family in families:
        retrain = unlearned(cfg, family, "retrain")
        ref = _mse(retrain, retrain.cfg, "forget")
        for knob, values in knobs.items():
            for value in values:
                extra = {knob: value} | ({"lam_rule": "kappa_e0"} if knob == "kappa" else {})
                run = unlearned(cfg, family, "varshney2025", **extra)
                s = varshney_summary({(family, "varshney2025"): run.history}).iloc[0]
                fm = _mse(run, run.cfg, "forget")
                rows.append({"family": family, "knob": knob, "value": value,
                             "lam_rule": run.cfg.unlearn.lam_rule, "lam": s["lam"],
                             "stage1_steps": s["stage1_steps"], "reached": s["reached"],
                             "d_at_stop": s["d_at_stop"],
                             "d_after_retention": s["d_after_retention"],
                             "forget_mse": fm, "forget_gap": fm - ref,
                             "retain_mse": _mse(run, run.cfg, "retain"),
                             "wall_s": run.wall_s})
    prov = {"extractor": "none (hole MSE only)", "families": list(families),
            "knobs": {k: list(v) for k, v in knobs.items()},
            "defaults": "the small preset (lam_rule retrain, k = 10, 450 stage-2 steps, hinge 1); "
                        "kappa is swept with lam_rule kappa_e0",
            "task": FIG_TASK, "paper_value": "not available"}
    return pd.DataFrame(rows), prov


def decisive_knob(table: pd.DataFrame, *, outcome: str = "forget_mse") -> pd.DataFrame:
    """Per family: the range (max - min) of ``outcome`` over each knob's values, largest first;
    the first row of each family is the knob that decides the result."""
    r = table.groupby(["family", "knob"], sort=False)[outcome].agg(lambda v: v.max() - v.min())
    out = r.rename("range").reset_index().sort_values(["family", "range"],
                                                      ascending=[True, False])
    out["decides"] = ~out.duplicated("family")
    return out.reset_index(drop=True)

