"""Notebook 03: the evaluation suite on unlearned models (gap to retrain, membership inference,
OOD score, backdoor audit, T-SNE, Inception-vs-domain check)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from l2l.config import RunConfig, for_family, key_dict, replace
from l2l.data import ImageSet, Split, load_data, make_mask, masked_input, take, take_spread, to_uint8
from l2l.evaluation import complete, evaluate, gap_to_retrain
from l2l.extractors import Extractor, find_inception_weights, get_extractor
from l2l.experiments.store import (feature_extractor, trained_generator, trained_key,
                                   unlearned_key, unlearned_model, varshney_calibrated)
from l2l.io import load_or_compute_tables
from l2l.metrics import fid_from_features, hole_crop
from l2l.poison import add_trigger
from l2l.privacy import backdoor_success_rate, mia_auc, ood_auroc, per_sample_loss, tsne_groups
from l2l.unlearn import unlearn

AUDIT_FAMILIES = ("mae", "autoencoder")  # the small families with an original-vs-retrain gap
AUDIT_METHODS = ("li2024", "varshney2025")
# K clean fine-tuning steps of the regeneration check (K = 200: l2l's choice)
REGENERATION_STEPS = {"smoke": 4, "small": 200, "paper": 200, "paper-dry": 4}
TSNE_POINTS = {"smoke": 8, "small": 50, "paper": 50, "paper-dry": 8}  # per group (Li et al.: 50)
# images per subset of the Inception-vs-domain check; smoke skips it (one 2048-d sqrtm takes
# ~10 s on 2 cores), paper scale has no domain network (its FID is Inception already)
EXTRACTOR_CHECK_IMAGES = {"smoke": 0, "small": 200, "paper": 0, "paper-dry": 0}


def audit_runs(cfg: RunConfig, images: ImageSet, split: Split, *, force: bool = False
               ) -> tuple[dict[str, torch.nn.Module], dict[str, dict[str, Any]]]:
    """original, retrain and each of ``AUDIT_METHODS`` unlearned from the original (cached), and
    each model's run-store key (what a table computed from them is keyed by)."""
    models, keys = {}, {}
    for role in ("original", "retrain"):
        models[role], _ = trained_generator(cfg, role, images, split, force=force)
        keys[role] = trained_key(cfg, role)
    for method in AUDIT_METHODS:
        mcfg = (varshney_calibrated(cfg, models["original"], models["retrain"], split.forget)
                if method == "varshney2025" else replace(cfg, method=method))
        models[method], _ = unlearned_model(mcfg, models["original"], split, force=force)
        keys[method] = unlearned_key(mcfg)
    return models, keys


def audit_models(cfg: RunConfig, images: ImageSet, split: Split, *,
                 force: bool = False) -> dict[str, torch.nn.Module]:
    """original, retrain and each of ``AUDIT_METHODS`` unlearned from the original (cached)."""
    return audit_runs(cfg, images, split, force=force)[0]


def privacy_rows(models: dict[str, torch.nn.Module], split: Split, cfg: RunConfig, *,
                 max_images: int = 500) -> pd.DataFrame:
    """Per model: membership-inference AUC (forget-train members vs forget-test non-members of
    the same classes, loss-threshold attack), OOD AUROC (forget-test vs retain-test hole MSE)
    and the three mean hole MSEs; equal member / non-member counts."""
    n = min(max_images, len(split.forget), len(split.forget_test))
    rows = []
    for name, model in models.items():
        member = per_sample_loss(model, take_spread(split.forget, n), cfg)
        outside = per_sample_loss(model, take_spread(split.forget_test, n), cfg)
        retain = per_sample_loss(model, take_spread(split.retain_test, max_images), cfg)
        rows.append({"model": name, "mia_auc": mia_auc(member, outside),
                     "ood_auroc": ood_auroc(retain, outside), "forget_train_mse": member.mean(),
                     "forget_test_mse": outside.mean(), "retain_test_mse": retain.mean(),
                     "n_members": n})
    return pd.DataFrame(rows)


def backdoor_rows(cfg: RunConfig, *, force: bool = False, max_images: int = 500,
                  models: dict[str, torch.nn.Module] | None = None
                  ) -> tuple[pd.DataFrame, dict[str, torch.nn.Module]]:
    """The backdoor audit (l2l's design; Varshney & Torra 2025's abstract names a data-poisoning
    audit, no details) on a sample-level split whose forget images are poisoned
    (``data.poison``): BSR on triggered held-out images for the poisoned original,
    the clean retrain, each unlearned model, and again after ``REGENERATION_STEPS`` of plain
    fine-tuning on clean retain data (does the backdoor come back?), next to clean retain hole
    MSE and the membership-inference AUC of the poisoned images. ``models``: the poisoned
    ``audit_models`` when already loaded."""
    pcfg = replace(cfg, split="sample", poison=True)
    images, split = load_data(pcfg)
    if models is None:
        models = audit_models(pcfg, images, split, force=force)
    clean = take_spread(split.retain_test, max_images)
    regen = replace(pcfg, method="finetune", unlearn__steps=REGENERATION_STEPS[cfg.scale])
    rows = []
    for name, model in models.items():
        again, _ = unlearn(model, "finetune", forget=split.forget, retain=split.retain, cfg=regen,
                           progress=False)
        privacy = privacy_rows({name: model}, split, pcfg, max_images=max_images).iloc[0]
        rows.append({"model": name, "bsr": backdoor_success_rate(model, clean, pcfg),
                     "bsr_after_finetune": backdoor_success_rate(again, clean, pcfg),
                     "retain_test_mse": privacy["retain_test_mse"],
                     "poisoned_mia_auc": privacy["mia_auc"], "n_poisoned": len(split.forget),
                     "n_test": len(clean)})
    return pd.DataFrame(rows), models


def backdoor_panel(models: dict[str, torch.nn.Module], cfg: RunConfig) -> torch.Tensor:
    """uint8 [2 + len(models), n, 3, S, S]: triggered held-out images, their masked input, then
    each model's completion (``n = cfg.eval.n_samples_figure``; ``cfg`` = the audit's config)."""
    pcfg = replace(cfg, split="sample", poison=True)
    _, split = load_data(pcfg)
    mask = make_mask(pcfg.eval.hole, pcfg.data.image_size)
    x = add_trigger(take_spread(split.retain_test, pcfg.eval.n_samples_figure))
    rows = [x, masked_input(x, mask)] + [complete(m, x, mask, pcfg) for m in models.values()]
    return to_uint8(torch.stack(rows))


def tsne_points(model: torch.nn.Module, split: Split, extractor: Extractor, cfg: RunConfig, *,
                n: int) -> pd.DataFrame:
    """Li et al.'s T-SNE panel: ``n`` points per group (model output / ground truth x forget /
    retain), embeddings of the hole crop by ``extractor``, 2-D t-SNE at perplexity 20 (or
    (4n - 1) / 3 when fewer points)."""
    mask = make_mask(cfg.eval.hole, cfg.data.image_size)
    feats = {}
    for subset, images in (("forget", split.forget_test), ("retain", split.retain_test)):
        idx = torch.linspace(0, len(images) - 1, n).round().long()  # spread over the classes
        truth = take(images, idx)
        output = complete(model, truth, mask, cfg)
        for kind, x in (("unlearned output", output), ("ground truth", truth)):
            feats[f"{kind}, {subset}"] = extractor.features(hole_crop(x, mask, cfg.data.image_size))
    return tsne_groups(feats, seed=cfg.seed)


def extractor_check(models: dict[str, torch.nn.Module], split: Split, cfg: RunConfig,
                    extractors: dict[str, Extractor], *, n: int) -> pd.DataFrame:
    """Hole FID of each model on ``n`` forget / retain test images (evenly spaced) per extractor,
    and each model's rank (1 = lowest FID) within (extractor, subset): do Inception and the
    domain network order original / retrain / unlearned the same way?"""
    mask = make_mask(cfg.eval.hole, cfg.data.image_size)
    size = cfg.data.image_size
    rows = []
    for subset, images in (("forget", split.forget_test), ("retain", split.retain_test)):
        truth = take_spread(images, n)
        crops = {"ground truth": hole_crop(truth, mask, size)}
        crops |= {name: hole_crop(complete(m, truth, mask, cfg), mask, size)
                  for name, m in models.items()}
        for ext_name, ext in extractors.items():
            feats = {k: ext.features(v) for k, v in crops.items()}
            for name in models:
                rows.append({"extractor": ext_name, "subset": subset, "model": name,
                             "fid_hole": fid_from_features(feats[name], feats["ground truth"]),
                             "n_images": len(truth)})
    table = pd.DataFrame(rows)
    table["rank"] = table.groupby(["extractor", "subset"])["fid_hole"].rank().astype(int)
    return table


def run_audit(cfg: RunConfig, *, families: tuple[str, ...] = AUDIT_FAMILIES,
              force: bool = False) -> dict[str, Any]:
    """Notebook 03: the evaluation suite on unlearned models.

    Class-level unlearning of every family in ``families``: membership inference, OOD AUROC and
    hole MSE (``privacy``), Li et al.'s metrics as a gap to the retrained model (``gap``, via
    ``evaluate`` / ``gap_to_retrain``); the backdoor audit on the AutoEncoder (``backdoor``); a
    T-SNE of the first family's Li et al. model (``tsne``); and, when the Inception weights are
    installed, whether Inception and the domain network rank the models alike (``check``, else
    None, with the reason in ``provenance["check"]``).

    The tables and their provenance are cached together (``io.load_or_compute_tables``), keyed
    by the run-store keys of every audited model (so a re-keyed model, e.g. a new lambda,
    recomputes them), the config, the audit constants and the Inception weights found (their
    sha256, or none); a warm rerun loads the models and reads the tables.

    Returns a dict of DataFrames, ``provenance`` (one sidecar dict per table) and
    ``backdoor_models``.
    """
    try:
        inception_sha = find_inception_weights(cfg)[1] if EXTRACTOR_CHECK_IMAGES[cfg.scale] else None
    except FileNotFoundError:
        inception_sha = "not found"
    images, split = load_data(cfg)
    runs = {f: audit_runs(for_family(cfg, f), images, split, force=force) for f in families}
    pcfg = replace(for_family(cfg, "autoencoder"), split="sample", poison=True)
    backdoor_models, backdoor_keys = audit_runs(pcfg, *load_data(pcfg), force=force)
    key = {"audit": key_dict(cfg), "families": list(families),
           "models": {f: keys for f, (_, keys) in runs.items()}, "backdoor_models": backdoor_keys,
           "methods": list(AUDIT_METHODS), "regeneration_steps": REGENERATION_STEPS[cfg.scale],
           "tsne_points": TSNE_POINTS[cfg.scale],
           "check": [EXTRACTOR_CHECK_IMAGES[cfg.scale], inception_sha]}
    models = {f: m for f, (m, _) in runs.items()}
    tables, prov = load_or_compute_tables(
        key, lambda: _audit_tables(cfg, families, models, backdoor_models, force),
        scale=cfg.scale, force=force)
    return tables | {"provenance": prov, "backdoor_models": backdoor_models}


def _audit_tables(cfg: RunConfig, families: tuple[str, ...],
                  all_models: dict[str, dict[str, torch.nn.Module]],
                  backdoor_models: dict[str, torch.nn.Module],
                  force: bool) -> tuple[dict[str, pd.DataFrame | None], dict[str, Any]]:
    """The tables of ``run_audit`` and their provenance, computed from the loaded models."""
    images, split = load_data(cfg)
    ext = feature_extractor(cfg, images, force=force)
    privacy, gaps = [], []
    for family in families:
        fcfg = for_family(cfg, family)
        models = all_models[family]
        privacy.append(privacy_rows(models, split, fcfg).assign(family=family))
        tables = [evaluate(m, split, fcfg.eval.hole, fcfg, extractor=ext, name=name)
                  for name, m in models.items()]
        gap = gap_to_retrain(pd.concat(tables, ignore_index=True), tables[1])
        gaps.append(gap.assign(family=family))
        gap_prov = tables[0].attrs
    backdoor, _ = backdoor_rows(for_family(cfg, "autoencoder"), models=backdoor_models)
    first = for_family(cfg, families[0])
    tsne = tsne_points(all_models[families[0]]["li2024"], split, ext, first,
                       n=TSNE_POINTS[cfg.scale])
    n_check = EXTRACTOR_CHECK_IMAGES[cfg.scale]
    check, check_prov = None, {"extractor": "domain and inception", "skipped": "at this scale"}
    if n_check:
        try:
            inception = get_extractor("inception", cfg)
        except FileNotFoundError as err:
            check_prov["skipped"] = f"no Inception weights: {str(err).splitlines()[0]}"
        else:
            models = {k: all_models[families[0]][k] for k in ("original", "retrain", "li2024")}
            check = extractor_check(models, split, first, {"domain": ext, "inception": inception},
                                    n=n_check)
            check_prov = {"extractor": "domain and inception", "domain": ext.provenance(),
                          "inception": inception.provenance(), "family": families[0],
                          "metric": "hole FID (clean-fid fid_from_feats)", "n_images": n_check,
                          "seed": cfg.seed}
    pixel = {"extractor": "none (pixel-space hole MSE)", "seed": cfg.seed,
             "loss": f"per-image hole MSE under {cfg.eval.hole}"}
    prov = {"gap": gap_prov,
            "privacy": pixel | {
                "mia": "loss-threshold attack AUC, members = forget-train images, non-members = "
                       "forget-test images of the same classes (equal counts)",
                "ood": "AUROC of hole MSE separating forget-class from retain-class test images",
                "varshney_lambda": "d(original, retrain) on the forget probe",
                "n_images": "min(500, forget-train, forget-test) members / non-members"},
            "backdoor": pixel | {"family": "autoencoder", "split": "sample",
                                 "poison": "l2l.poison (corner checkerboard -> magenta hole)",
                                 "regeneration_steps": REGENERATION_STEPS[cfg.scale],
                                 "n_images": int(backdoor["n_test"].iloc[0])},
            "tsne": ext.provenance() | {
                "family": families[0], "model": "li2024", "features": "hole crop",
                "n_images": 4 * TSNE_POINTS[cfg.scale], "seed": cfg.seed,
                "perplexity": "min(20, (N - 1) / 3)", "impl": "scikit-learn TSNE (tsne_embed)"},
            "check": check_prov}
    return {"privacy": pd.concat(privacy, ignore_index=True),
            "gap": pd.concat(gaps, ignore_index=True), "backdoor": backdoor, "tsne": tsne,
            "check": check}, prov
