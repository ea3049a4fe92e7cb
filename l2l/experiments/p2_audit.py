"""Varshney & Torra's poisoning audit at sample level: does the backdoor stay gone?

The AutoEncoder is trained on a set whose sample-level forget images carry the backdoor
(``l2l.poison``: corner trigger -> magenta hole); every method then unlearns those images
(Varshney & Torra 2025's abstract: a data-poisoning audit under sample unlearning; trigger,
target and BSR are l2l's choices). Per training seed (``AUDIT_SEEDS``; data fixed) and method:

* ``bsr``: backdoor success rate on triggered held-out images right after the method. For
  ``varshney2025-stage1`` that is "after stage 1", for ``varshney2025`` "after stage 2";
* ``bsr_after_clean_ft``: after ``REGENERATION_STEPS`` (K = 200) more steps of plain fine-tuning
  on clean retain data (does the backdoor regenerate?);
* ``relearn_steps``: the relearning probe: fine-tuning on ``RELEARN_IMAGES`` poisoned images
  only (Adam, ``unlearn.ft_lr``, batches of ``unlearn.batch_size``), the first checked step at
  which the BSR reaches ``RELEARN_BSR``; nan when it does not within ``RELEARN_MAX_STEPS``.
  The retrained model's count is the "never poisoned" reference;
* clean retain hole MSE beside them, and the membership-inference AUC of the poisoned images
  (``audit.privacy_rows``).

``varshney2025`` and its stage 1 run twice: lambda calibrated on the retrained model
(``lam_rule = "retrain"``) and the retrain-free lambda = kappa * e0 (``"kappa_e0"``, what the
paper scale must use). Every row is cached per run (warm reruns only read).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import pandas as pd
import torch

from l2l.config import RunConfig, for_family, replace, resolve_device, unlearn_seed
from l2l.data import take_spread
from l2l.experiments.audit import REGENERATION_STEPS, privacy_rows
from l2l.experiments.p2_autoencoder import seed_config
from l2l.experiments.store import data, unlearned
from l2l.io import load_or_compute
from l2l.privacy import backdoor_success_rate
from l2l.unlearn import unlearn
from l2l.unlearn.loop import release, run, trainable
from l2l.unlearn.ops import ops_for
from l2l.unlearn.varshney import task_steps

POISON_SPLIT = {"data__split": "sample", "data__poison": True}
# (row label, method, overrides)
AUDIT_VARIANTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("original (poisoned)", "original", {}),
    ("retrain", "retrain", {}),
    ("finetune", "finetune", {}),
    ("max_loss", "max_loss", {}),
    ("noisy_label", "noisy_label", {}),
    ("retain_label", "retain_label", {}),
    ("random_encoder", "random_encoder", {}),
    ("li2024", "li2024", {}),
    ("varshney2025 stage 1 (λ retrain)", "varshney2025-stage1", {}),
    ("varshney2025 (λ retrain)", "varshney2025", {}),
    ("varshney2025 stage 1 (λ = κ·e0)", "varshney2025-stage1", {"lam_rule": "kappa_e0"}),
    ("varshney2025 (λ = κ·e0)", "varshney2025", {"lam_rule": "kappa_e0"}),
)
AUDIT_SEEDS = {"smoke": (0, 1), "small": (0, 1, 2), "paper": (0, 1, 2), "paper-dry": (0, 1)}  # smoke: seconds
RELEARN_IMAGES = {"smoke": 8, "small": 32, "paper": 32, "paper-dry": 8}
RELEARN_MAX_STEPS = {"smoke": 4, "small": 200, "paper": 200, "paper-dry": 4}
RELEARN_CHECK_EVERY = {"smoke": 2, "small": 10, "paper": 10, "paper-dry": 2}
RELEARN_BSR = 0.5
EVAL_IMAGES = 500  # triggered / clean held-out images and MIA members


def relearn_steps(model: torch.nn.Module, poisoned: torch.Tensor, clean: torch.Tensor,
                  cfg: RunConfig) -> float:
    """Steps of fine-tuning on ``poisoned`` images until the BSR on triggered ``clean`` images
    reaches ``RELEARN_BSR`` (checked every ``RELEARN_CHECK_EVERY`` steps); nan if never."""
    if backdoor_success_rate(model, clean, cfg) >= RELEARN_BSR:
        return 0.0
    every, cap = RELEARN_CHECK_EVERY[cfg.scale], RELEARN_MAX_STEPS[cfg.scale]
    student = copy.deepcopy(model)
    params = trainable(student, "all")
    ops = ops_for(student, cfg)
    gen = torch.Generator().manual_seed(unlearn_seed(cfg) + 4243)
    found: dict[str, float] = {"steps": math.nan}

    def check(step: int) -> dict[str, Any] | None:
        if (step + 1) % every:
            return None
        bsr = backdoor_success_rate(student, clean, cfg)
        student.train()  # the check completes in eval mode
        if bsr >= RELEARN_BSR:
            found["steps"] = float(step + 1)
            return {"stop": True}
        return {}

    run("relearn", student, params, task_steps(ops, student, poisoned, cfg.unlearn.batch_size,
                                               gen, resolve_device(cfg.device)),
        steps=cap, lr=cfg.unlearn.ft_lr, warmup=0.0,
        optimizer=lambda p, lr: torch.optim.Adam(p, lr=lr), grad_clip=0.0,
        log_every=cap, progress=False, stop=check, precision=cfg.precision)
    release(student)
    return found["steps"]


def audit_row(r, cfg: RunConfig) -> dict[str, Any]:
    """The audit numbers of one stored run on its poisoned split (cached with the run)."""
    rcfg = r.cfg
    _, split = data(rcfg)
    clean = take_spread(split.retain_test, min(EVAL_IMAGES, len(split.retain_test)))
    k = REGENERATION_STEPS[cfg.scale]
    key = r.key | {"method": r.name, "audit": {
        "clean_ft_steps": k, "relearn": [RELEARN_IMAGES[cfg.scale], RELEARN_MAX_STEPS[cfg.scale],
                                         RELEARN_CHECK_EVERY[cfg.scale], RELEARN_BSR],
        "n_images": len(clean)}}

    def compute() -> dict[str, Any]:
        regen = replace(rcfg, method="finetune", unlearn__steps=k)
        again, _ = unlearn(r.model, "finetune", forget=split.forget, retain=split.retain,
                           cfg=regen, progress=False)
        privacy = privacy_rows({r.name: r.model}, split, rcfg, max_images=EVAL_IMAGES).iloc[0]
        poisoned = split.forget[:RELEARN_IMAGES[cfg.scale]]
        return {"bsr": backdoor_success_rate(r.model, clean, rcfg),
                "bsr_after_clean_ft": backdoor_success_rate(again, clean, rcfg),
                "relearn_steps": relearn_steps(r.model, poisoned, clean, rcfg),
                "clean_retain_mse": float(privacy["retain_test_mse"]),
                "poisoned_mia_auc": float(privacy["mia_auc"]),
                "n_poisoned": len(split.forget), "n_test": len(clean)}

    return load_or_compute(key, "audit_row.pt", compute, scale=cfg.scale)


def poisoning_audit(cfg: RunConfig, *, variants=AUDIT_VARIANTS,
                    seeds: tuple[int, ...] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-seed rows: model (label), method, lam_rule, seed, lam, the audit numbers."""
    seeds = AUDIT_SEEDS[cfg.scale] if seeds is None else seeds
    rows = []
    for seed in seeds:
        scfg = seed_config(cfg, seed)
        for label, method, extra in variants:
            r = unlearned(scfg, "autoencoder", method, **(POISON_SPLIT | extra))
            lam = r.history["lam"].iloc[0] if "lam" in r.history and len(r.history) else math.nan
            rows.append({"model": label, "method": method,
                         "lam_rule": extra.get("lam_rule", "retrain") if "varshney" in method
                         else "", "seed": seed, "lam": float(lam)} | audit_row(r, cfg))
    base = for_family(cfg, "autoencoder")
    prov = {"extractor": "none (BSR, hole MSE, MIA AUC)", "family": "autoencoder",
            "split": "sample", "forget_fraction":
            base.data.forget_fraction, "poison": "l2l.poison (corner checkerboard -> magenta "
                                                 "hole), the sample-level forget images",
            "training_seeds": list(seeds), "data_seed": cfg.seed,
            "clean_ft_steps": REGENERATION_STEPS[cfg.scale],
            "relearn": {"images": RELEARN_IMAGES[cfg.scale],
                        "max_steps": RELEARN_MAX_STEPS[cfg.scale],
                        "check_every": RELEARN_CHECK_EVERY[cfg.scale], "bsr": RELEARN_BSR,
                        "optimizer": f"Adam lr {base.unlearn.ft_lr}"},
            "bsr": "fraction of triggered held-out images whose hole is closer to magenta than "
                   "to the truth", "n_images": EVAL_IMAGES,
            "mia": "loss-threshold AUC, poisoned forget-train vs held-out test images",
            "paper_value": "not available: the paper's numbers are not public"}
    return pd.DataFrame(rows), prov


def summarise_audit(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and sd over seeds per model row (relearn_steps: nan counts as not relearned)."""
    cols = ["bsr", "bsr_after_clean_ft", "relearn_steps", "clean_retain_mse",
            "poisoned_mia_auc", "lam"]
    g = per_seed.groupby(["model", "method", "lam_rule"], sort=False)
    out = g[cols].mean()
    sd = g[cols].std().add_suffix("_sd")
    out = out.join(sd).join(g["seed"].nunique().rename("n_seeds"))
    out["relearned_in"] = g["relearn_steps"].apply(lambda s: int(s.notna().sum()))
    return out.reset_index()
