"""Experiment runners: one ``run_<group>(cfg)`` per notebook, each returning tidy tables.

Every trained artefact goes through the config-keyed cache (``l2l.io.load_or_compute``), so a
rerun only recomputes what its config changed.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import torch

from l2l.config import FAMILIES, FAMILY_RECIPES, RunConfig, cache_key, for_family, resolve_device
from l2l.data import ImageSet, Split, load_data
from l2l.evaluation import completion_table, sample_panel
from l2l.extractors import Extractor, get_extractor
from l2l.io import checkpoint_dict, load_or_compute
from l2l.models import DomainClassifier, build_model
from l2l.pretrained import load_pretrained
from l2l.train import train_classifier, train_generator
from l2l.unlearn import unlearn


def _restore(ckpt: dict[str, Any], model: torch.nn.Module) -> tuple[torch.nn.Module, pd.DataFrame]:
    model.load_state_dict(ckpt["model"])
    return model.eval(), pd.DataFrame(ckpt.get("history", {}))


def domain_classifier(cfg: RunConfig, images: ImageSet, *, force: bool = False) -> DomainClassifier:
    """The small-scale feature network (FID / IS / cosine), trained on all classes, cached."""
    key = cache_key(cfg, "data") | {"classifier": [cfg.train.classifier_steps, cfg.train.classifier_lr]}
    torch.manual_seed(cfg.seed + 7)  # weight initialisation (torch's default seed is random)
    net = DomainClassifier(n_classes=cfg.data.n_classes)

    def compute() -> dict[str, Any]:
        hist = train_classifier(net, images.x_train, images.y_train, cfg)
        return checkpoint_dict(net, cfg, step=cfg.train.classifier_steps) | {"history": hist.to_dict("list")}

    ckpt = load_or_compute(key, "classifier.pt", compute, scale=cfg.scale, force=force)
    return _restore(ckpt, net)[0].to(resolve_device(cfg.device))


def feature_extractor(cfg: RunConfig, images: ImageSet, *, force: bool = False) -> Extractor:
    """The extractor named by ``cfg.eval.extractor``: ``domain`` (trained here, cached) at small
    scale, ``inception`` / ``clip`` from pre-placed weights (``l2l.extractors``) at paper scale."""
    if cfg.eval.extractor == "domain":
        return get_extractor("domain", cfg, net=domain_classifier(cfg, images, force=force))
    return get_extractor(cfg.eval.extractor, cfg)


def trained_generator(cfg: RunConfig, role: str, images: ImageSet, split: Split, *,
                      force: bool = False) -> tuple[torch.nn.Module, pd.DataFrame]:
    """``role="original"``: trained on every training image; ``"retrain"``: on retain only.

    With ``cfg.model.checkpoint`` set (paper scale) the original is the official checkpoint
    (``l2l.pretrained``); its path and sha256 are in the returned history's ``attrs``.
    """
    if role not in ("original", "retrain"):
        raise ValueError(f"unknown role {role!r}; choose 'original' or 'retrain'")
    if role == "original" and cfg.model.checkpoint:
        model, prov = load_pretrained(cfg)
        hist = pd.DataFrame()
        hist.attrs = prov
        return model.to(resolve_device(cfg.device)), hist
    data = images.x_train if role == "original" else split.retain
    key = cache_key(cfg, "data", "model", "train") | {"role": role}
    torch.manual_seed(cfg.seed)  # weight initialisation
    model = build_model(cfg.model.family, cfg.model.size)
    if cfg.model.family == "vqgan":
        frozen_tokenizer(model, cfg, images, force=force)

    def compute() -> dict[str, Any]:
        hist = train_generator(model, data, cfg, desc=role)
        return checkpoint_dict(model, cfg, step=cfg.train.steps) | {"history": hist.to_dict("list")}

    ckpt = load_or_compute(key, f"{role}.pt", compute, scale=cfg.scale, force=force)
    return _restore(ckpt, model)


def frozen_tokenizer(model: torch.nn.Module, cfg: RunConfig, images: ImageSet, *,
                     force: bool = False) -> None:
    """Train (or load) the VQ-GAN tokenizer on every training image and freeze it in ``model``.

    The tokenizer is shared frozen pre-processing, as in Li et al. (MAGE's VQGAN is never
    trained by unlearning); the retrain reference therefore reuses the tokenizer fitted on all
    classes and only its masked-token transformer is retrained without the forget classes.
    """
    t = cfg.train
    key = cache_key(cfg, "data", "model") | {"tokenizer": [t.tokenizer_steps, t.tokenizer_lr]}

    def compute() -> dict[str, Any]:
        hist = model.train_tokenizer(images.x_train, steps=t.tokenizer_steps, lr=t.tokenizer_lr,
                                     generator=torch.Generator().manual_seed(cfg.seed + 11))
        return {"model": model.vqgan.state_dict(), "history": hist.to_dict("list")}

    ckpt = load_or_compute(key, "tokenizer.pt", compute, scale=cfg.scale, force=force)
    model.vqgan.load_state_dict(ckpt["model"])
    model.vqgan.requires_grad_(False).eval()


def retain_set(split: Split, cfg: RunConfig) -> torch.Tensor:
    """The retain data unlearning sees: real retain images or the proxy set (Li et al. Sec. 7.3)."""
    if cfg.unlearn.retain_source == "real":
        return split.retain
    if len(split.proxy) == 0:
        raise ValueError("proxy retain needs classes outside forget and retain; none are left")
    return split.proxy


def unlearned_model(cfg: RunConfig, original: torch.nn.Module, split: Split, *,
                    force: bool = False) -> tuple[torch.nn.Module, pd.DataFrame]:
    """``unlearn(original, cfg.unlearn.method, ...)`` through the cache."""
    key = cache_key(cfg, "data", "model", "train", "unlearn")
    model = build_model(cfg.model.family, cfg.model.size)

    def compute() -> dict[str, Any]:
        out, hist = unlearn(original, cfg.unlearn.method, forget=split.forget,
                            retain=retain_set(split, cfg), cfg=cfg)
        return checkpoint_dict(out, cfg, step=cfg.unlearn.steps) | {"history": hist.to_dict("list")}

    ckpt = load_or_compute(key, f"unlearned_{cfg.unlearn.method}.pt", compute, scale=cfg.scale,
                           force=force)
    return _restore(ckpt, model)


def run_quickstart(cfg: RunConfig, *, force: bool = False) -> dict[str, Any]:
    """The smallest end-to-end run (notebook 00): train original and retrain, unlearn with
    Li et al., score mean fill / noise fill / original / retrain / unlearned.

    Returns ``{"table", "provenance", "history", "samples"}``.
    """
    images, split = load_data(cfg)
    net = feature_extractor(cfg, images, force=force)
    original, _ = trained_generator(cfg, "original", images, split, force=force)
    retrain, _ = trained_generator(cfg, "retrain", images, split, force=force)
    unlearned, history = unlearned_model(cfg, original, split, force=force)
    models = {"mean fill": "mean fill", "noise fill": "noise fill", "original": original,
              "retrain": retrain, "unlearned": unlearned}
    table, prov = completion_table(models, split, net, cfg)
    samples = sample_panel({k: models[k] for k in ("original", "unlearned", "retrain")}, split, cfg)
    return {"table": table, "provenance": prov, "history": history, "samples": samples}



GENERATOR_MASKS = ("centre_half", "centre_quarter", "outpaint_4")


def run_generators(cfg: RunConfig, *, families: tuple[str, ...] = FAMILIES,
                   force: bool = False) -> dict[str, Any]:
    """Notebook 01, the "before unlearning" half of Li et al. Fig. 1: train (or load) the
    original and retrain model of every family and score their completions.

    Returns ``{"table", "provenance", "samples"}``. The table has one row per (model, mask):
    the mean-fill and noise-fill references, every family's original (``model`` = family) and,
    for the test hole ``eval.hole`` only, its retrain reference (``"<family> retrain"``: the
    original-vs-retrain gap on forget data is what realistic unlearning can aim for), with
    forget_* / retain_* metrics and ``train_time_s`` (cold training time from the cached
    history). ``samples`` maps "<mask> <subset>" to a panel (ground truth, masked input, one
    row per family's original).
    """
    images, split = load_data(cfg)
    net = feature_extractor(cfg, images, force=force)
    originals, retrains, times = {}, {}, {}
    for family in families:
        fcfg = for_family(cfg, family)
        start = time.perf_counter()
        originals[family], hist = trained_generator(fcfg, "original", images, split, force=force)
        retrains[f"{family} retrain"], rhist = trained_generator(fcfg, "retrain", images, split,
                                                                 force=force)
        for name, h in ((family, hist), (f"{family} retrain", rhist)):
            times[name] = float(h["time_s"].iloc[-1]) if len(h) else time.perf_counter() - start
    tables, samples, prov = [], {}, {}
    for mask_name in GENERATOR_MASKS:
        models = {"mean fill": "mean fill", "noise fill": "noise fill"} | originals
        if mask_name == cfg.eval.hole:
            models |= retrains
        table, prov = completion_table(models, split, net, cfg, mask_name=mask_name)
        table["train_time_s"] = [times.get(m, float("nan")) for m in table["model"]]
        tables.append(table)
        panel = sample_panel(originals, split, cfg, mask_name=mask_name)
        samples |= {f"{mask_name} {subset}": p for subset, p in panel.items()}
    prov = prov | {"mask": list(GENERATOR_MASKS), "train_time": "wall time of the model's "
                   "training loop when it was trained (cached), 2 CPU cores at small scale",
                   "recipes": {f: FAMILY_RECIPES[cfg.scale][f] for f in families}}
    return {"table": pd.concat(tables, ignore_index=True), "provenance": prov, "samples": samples}
