"""The run store: every trained or unlearned model and every completion, computed once.

Each artefact is keyed by the sub-config it depends on (``config.cache_key``) and lives under
``results/<scale>/cache/<hash>/`` (``l2l.io.load_or_compute``: atomic writes, a key written by
another config is refused). Notebooks, tables, figures and claims all read the same copies:

* ``trained_generator(cfg, role, ...)``: the original (every training image) or the retrain
  reference (retain only), with its training history and wall time.
* ``unlearned(cfg, family, method, **overrides) -> Run``: a family's original unlearned with one
  method (``l2l.unlearn.unlearn``), the unlearning wall time and history stored with the model.
  ``"original"`` and ``"retrain"`` are runs too, so a table is a loop over method names.
* Trained models (originals, retrains, the VQ tokenizer, the domain network) come from the model
  zoo (``l2l.zoo``) when it holds their key, and are trained into the cache otherwise.
* ``completions(run, task, subset)``: the run's completions of the held-out test images for one
  I2I task, uint8 [N, 3, S, S] (like the PNGs the papers' evaluation scripts read).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from l2l.config import DataConfig, RunConfig, cache_key, for_family, replace, resolve_device
from l2l.data import (ImageSet, Split, coco, load_data, make_mask, spread, take, to_uint8,
                      unseen_photos)
from l2l.evaluation import complete
from l2l.extractors import Extractor, get_extractor
from l2l.io import checkpoint_dict, load_or_compute
from l2l.models import DomainClassifier, family, frozen_part, model_for
from l2l.pretrained import load_pretrained
from l2l.profile import timed
from l2l.runtime import seeded_run
from l2l.train import train_classifier, train_generator
from l2l.unlearn import METHODS, unlearn
from l2l.unlearn.varshney import Probe
from l2l.zoo import load_or_train

VARSHNEY = ("varshney2025", "varshney2025-stage1")  # methods with a lambda threshold
TRAINED = ("original", "retrain")  # runs that are trainings, not unlearnings of the original
# test images per subset (None: all)
EVAL_IMAGES = {"smoke": None, "small": 500, "paper": None, "paper-dry": 16}


def _restore(ckpt: dict[str, Any], model: torch.nn.Module) -> tuple[torch.nn.Module, pd.DataFrame]:
    model.load_state_dict(ckpt["model"])
    return model.eval(), pd.DataFrame(ckpt.get("history", {}))


_DATA: dict[str, tuple[ImageSet, Split]] = {}


def data(cfg: RunConfig) -> tuple[ImageSet, Split]:
    """``load_data(cfg)``, memoised within a process per (data config, seed, hole, data root);
    the last four data sets are kept."""
    k = json.dumps([cache_key(cfg, "data"), cfg.eval.hole, cfg.data_root], sort_keys=True)
    if k not in _DATA:
        if len(_DATA) >= 4:
            _DATA.pop(next(iter(_DATA)))
        _DATA[k] = load_data(cfg)
    return _DATA[k]


# ----------------------------------------------------------------------------- trained models
def domain_classifier(cfg: RunConfig, images: ImageSet, *, force: bool = False) -> DomainClassifier:
    """The small-scale feature network (FID / IS / cosine), trained on all classes, cached."""
    key = cache_key(cfg, "data") | {"classifier": [cfg.train.classifier_steps, cfg.train.classifier_lr]}
    torch.manual_seed(cfg.seed + 7)  # weight initialisation (torch's default seed is random)
    net = DomainClassifier(n_classes=len(images.class_names))  # a loaded proxy pool included

    def compute() -> dict[str, Any]:
        hist = train_classifier(net, images.x_train, images.y_train, cfg)
        return checkpoint_dict(net, cfg, step=cfg.train.classifier_steps) | {"history": hist.to_dict("list")}

    ckpt = load_or_train(key, "classifier.pt", compute, scale=cfg.scale, force=force)
    return _restore(ckpt, net)[0].to(resolve_device(cfg.device))


def feature_extractor(cfg: RunConfig, images: ImageSet | None = None, *,
                      force: bool = False) -> Extractor:
    """The extractor named by ``cfg.eval.extractor``: ``domain`` (trained here, cached) at small
    scale, ``inception`` / ``clip`` from pre-placed weights (``l2l.extractors``) at paper scale;
    with ``cfg.eval.is_network`` its class outputs (IS) come from that network instead."""
    if cfg.eval.extractor == "domain":
        images = data(cfg)[0] if images is None else images
        ext = get_extractor("domain", cfg, net=domain_classifier(cfg, images, force=force))
    else:
        ext = get_extractor(cfg.eval.extractor, cfg)
    if cfg.eval.is_network:  # Li et al.'s released IS network (l2l.protocol)
        from l2l.protocol import is_network, with_is_network

        ext = with_is_network(ext, is_network(cfg.eval.is_network, cfg,
                                              device=resolve_device(cfg.device)))
    return ext


def frozen_tokenizer(model: torch.nn.Module, cfg: RunConfig, images: ImageSet, *,
                     force: bool = False) -> None:
    """Train (or load) the VQ-GAN tokenizer on every training image and freeze it in ``model``.

    The tokenizer is shared frozen pre-processing, as in Li et al. (MAGE's VQGAN is never
    trained by unlearning); the retrain reference therefore reuses the tokenizer fitted on all
    classes and only its masked-token transformer is retrained without the forget classes.
    With an official checkpoint (paper scale) that tokenizer is the checkpoint's own.
    """
    t = cfg.train
    part = frozen_part(model)  # the family's frozen part (Family.frozen_part): MAGE's VQGAN
    if cfg.model.checkpoint:
        part.load_state_dict(frozen_part(load_pretrained(cfg)[0]).state_dict())
        part.requires_grad_(False).eval()
        return
    recipe = [t.tokenizer_steps, t.tokenizer_lr] + ([t.tokenizer_adversarial]
                                                    if t.tokenizer_adversarial else [])
    key = cache_key(cfg, "data", "model") | {"tokenizer": recipe}

    def compute() -> dict[str, Any]:
        with seeded_run(cfg.seed + 11), timed("train"):
            hist = model.train_tokenizer(images.x_train, steps=t.tokenizer_steps,
                                         lr=t.tokenizer_lr,
                                         adversarial=t.tokenizer_adversarial,
                                         generator=torch.Generator().manual_seed(cfg.seed + 11))
        return {"model": part.state_dict(), "history": hist.to_dict("list")}

    ckpt = load_or_train(key, "tokenizer.pt", compute, scale=cfg.scale, force=force,
                         spec=part.spec)
    part.load_state_dict(ckpt["model"])
    part.requires_grad_(False).eval()


_SPLIT_FIELDS = ("split", "forget_classes", "retain_classes", "forget_fraction")


def _original_key_config(cfg: RunConfig) -> RunConfig:
    """The original trains on every training image whatever the split, so its checkpoint is
    keyed with the split fields at their defaults (one original per data set, shared by the
    class- and sample-level splits); a poisoned set depends on the split and keeps them."""
    if cfg.data.poison:
        return cfg
    default = DataConfig()  # a key, not a run: no validation against n_classes
    data_cfg = dataclasses.replace(cfg.data, **{f: getattr(default, f) for f in _SPLIT_FIELDS})
    return dataclasses.replace(cfg, data=data_cfg)


def trained_key(cfg: RunConfig, role: str) -> dict[str, Any]:
    """The run-store key of ``cfg``'s trained ``role`` ("original" or "retrain") model."""
    return cache_key(_original_key_config(cfg) if role == "original" else cfg,
                     "data", "model", "train") | {"role": role}


def unlearned_key(cfg: RunConfig) -> dict[str, Any]:
    """The run-store key of ``cfg``'s unlearned model (method and lambda included)."""
    return cache_key(cfg, "data", "model", "train", "unlearn")


class RetrainNotAvailable(ValueError):
    """The retrain reference of a run that can neither train it nor load it (paper scale
    without ``model.retrain_checkpoint``). Li et al.'s tables report it as "not available"."""


def retrain_available(cfg: RunConfig) -> bool:
    """Whether ``cfg``'s family has a retrain reference: a training recipe or a placed
    retrained checkpoint (``cfg`` switched to the family, e.g. ``config.for_family``)."""
    return cfg.train.steps >= 1 or bool(cfg.model.retrain_checkpoint)


def check_trainable(cfg: RunConfig, role: str) -> None:
    """A model l2l must train needs ``train.steps >= 1``: no table ever reports an untrained
    generator. The paper preset trains none (its originals are the official checkpoints), so its
    retrain reference raises ``RetrainNotAvailable`` until a retrained checkpoint is placed."""
    if role == "retrain" and not retrain_available(cfg):
        raise RetrainNotAvailable(
            f"train.steps = {cfg.train.steps}: the {role} {cfg.model.family} model would be "
            f"untrained. At paper scale the retrain reference is not available until you place "
            f"a retrained checkpoint (model.retrain_checkpoint, official layout) or give it a "
            f"training recipe (train__steps ...)")
    if cfg.train.steps < 1 and role != "retrain":
        raise ValueError(f"train.steps = {cfg.train.steps}: the {role} {cfg.model.family} model "
                         f"would be untrained (set train__steps >= 1 or place model.checkpoint)")
    if family(cfg.model.family).frozen_part and not cfg.model.checkpoint and cfg.train.tokenizer_steps < 1:
        raise ValueError(f"train.tokenizer_steps = {cfg.train.tokenizer_steps}: the VQ-GAN "
                         f"tokenizer would be untrained (set train__tokenizer_steps >= 1)")


def trained_generator(cfg: RunConfig, role: str, images: ImageSet, split: Split, *,
                      force: bool = False) -> tuple[torch.nn.Module, pd.DataFrame]:
    """``role="original"``: trained on every training image; ``"retrain"``: on retain only.

    With ``cfg.model.checkpoint`` set (paper scale) the original is the official checkpoint
    (``l2l.pretrained``); its path and sha256 are in the returned history's ``attrs``.
    """
    if role not in TRAINED:
        raise ValueError(f"unknown role {role!r}; choose 'original' or 'retrain'")
    if role == "original" and cfg.model.checkpoint:
        model, prov = load_pretrained(cfg)
        hist = pd.DataFrame()
        hist.attrs = prov
        return model.to(resolve_device(cfg.device)), hist
    check_trainable(cfg, role)
    if role == "retrain" and cfg.model.retrain_checkpoint and cfg.train.steps < 1:
        model, prov = load_pretrained(replace(cfg, checkpoint=cfg.model.retrain_checkpoint,
                                              checkpoint_sha256=""))
        hist = pd.DataFrame()
        hist.attrs = prov
        return model.to(resolve_device(cfg.device)), hist
    train_data = images.x_train if role == "original" else split.retain
    key = trained_key(cfg, role)
    torch.manual_seed(cfg.seed)  # weight initialisation
    model = model_for(cfg)
    if family(model).frozen_part:
        frozen_tokenizer(model, cfg, images, force=force)

    def compute() -> dict[str, Any]:
        hist = train_generator(model, train_data, cfg, desc=role)
        return checkpoint_dict(model, cfg, step=cfg.train.steps) | {"history": hist.to_dict("list")}

    ckpt = load_or_train(key, f"{role}.pt", compute, scale=cfg.scale, force=force,
                         spec=model.spec)
    return _restore(ckpt, model)


# ----------------------------------------------------------------------------- unlearning
def retain_set(split: Split, cfg: RunConfig) -> Any:
    """The retain data unlearning sees: the real retain images (``unlearn.retain_fraction`` of
    them, evenly spaced over the set), or with ``retain_source = "proxy"`` Li et al.'s proxy set
    ("Ours (Proxy D_R)"; README "Proxy retain set") named by ``unlearn.proxy``: the training
    images of classes outside forget and retain (``other_classes``), or as many crops of
    never-seen photos as there are forget images (``unseen_photos``, ratio r = 1), or the first
    as many COCO images under ``<data_root>/coco/`` (``coco``, paper scale)."""
    if cfg.unlearn.retain_source == "real":
        n = len(split.retain)
        if cfg.unlearn.retain_fraction == 1:
            return split.retain
        return split.retain[spread(n, max(1, round(cfg.unlearn.retain_fraction * n)))]
    if cfg.unlearn.proxy == "unseen_photos":
        return unseen_photos(cfg.data, len(split.forget), seed=cfg.seed)
    if cfg.unlearn.proxy == "coco":
        return coco(cfg, len(split.forget))
    if len(split.proxy) == 0:
        raise ValueError("proxy retain with unlearn.proxy = 'other_classes' needs classes outside "
                         "forget and retain; none are left (use proxy = 'unseen_photos')")
    return split.proxy


def varshney_calibrated(cfg: RunConfig, original: torch.nn.Module, retrain: torch.nn.Module,
                        forget: Any) -> RunConfig:
    """``cfg`` for ``varshney2025`` with the retrain-calibrated threshold lambda =
    d(original, retrain) on the forget probe (l2l's choice); a zero distance is raised
    to 1e-8 (``lam = 0`` would select kappa * e0 instead)."""
    lam = Probe(original, forget, cfg).distance(retrain)
    method = cfg.unlearn.method if cfg.unlearn.method in VARSHNEY else "varshney2025"
    return replace(cfg, method=method, lam=max(lam, 1e-8))


def unlearned_model(cfg: RunConfig, original: torch.nn.Module, split: Split, *,
                    force: bool = False) -> tuple[torch.nn.Module, pd.DataFrame]:
    """``unlearn(original, cfg.unlearn.method, ...)`` through the cache (model, history)."""
    run = _unlearn_cached(cfg, original, split, force=force)
    return run.model, run.history


@dataclass
class Run:
    """One stored model: ``name`` (method), the config it was made with, the model (eval mode),
    its history (``l2l.unlearn.HISTORY_COLUMNS`` or the training history) and its wall time in
    seconds (unlearning, or training for original / retrain; nan for an official checkpoint)."""

    name: str
    cfg: RunConfig
    model: torch.nn.Module
    history: pd.DataFrame
    wall_s: float
    key: dict[str, Any]


def _unlearn_cached(cfg: RunConfig, original: torch.nn.Module, split: Split, *,
                    force: bool = False) -> Run:
    method = cfg.unlearn.method
    key = unlearned_key(cfg)
    model = model_for(cfg)

    def compute() -> dict[str, Any]:
        start = time.perf_counter()  # the whole call, as l2l.bench times it
        out, hist = unlearn(original, method, forget=split.forget, retain=retain_set(split, cfg),
                            cfg=cfg)
        wall = time.perf_counter() - start
        return checkpoint_dict(out, cfg, step=cfg.unlearn.steps) | {
            "history": hist.to_dict("list"), "history_attrs": dict(hist.attrs), "wall_s": wall}

    ckpt = load_or_compute(key, f"unlearned_{method}.pt", compute, scale=cfg.scale, force=force)
    model, hist = _restore(ckpt, model)
    hist.attrs = dict(ckpt.get("history_attrs") or {})
    if method in VARSHNEY and "lambda_source" not in hist.attrs and cfg.unlearn.lam > 0:
        hist.attrs["lambda_source"] = "given"  # entries cached before attrs were stored
    return Run(method, cfg, model, hist, float(ckpt.get("wall_s", math.nan)), key)


def run_config(cfg: RunConfig, family: str, method: str, **overrides: Any) -> RunConfig:
    """The config of one run: ``cfg`` with ``family``'s recipe, ``method`` and ``overrides``
    (e.g. ``alpha=0.5``, ``seed_offset=1``); ``li2024-proxy`` implies ``retain_source="proxy"``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    out = replace(for_family(cfg, family), method=method, **overrides)
    if method == "li2024-proxy":
        out = replace(out, retain_source="proxy")
    return out


def unlearned(cfg: RunConfig, family: str, method: str, *, force: bool = False,
              **overrides: Any) -> Run:
    """The stored run of ``method`` on ``family`` (trained or unlearned once per config).

    Args:
        cfg: the notebook's preset; the family recipe is applied here (``for_family``).
        family: a model family. method: one of ``l2l.unlearn.METHODS``; ``"original"`` and
            ``"retrain"`` return the trained models of ``trained_generator``.
        force: recompute this run (not the original it starts from).
        **overrides: config overrides of this run, e.g. ``alpha=0.5`` or ``seed_offset=2``
            (the unlearning seed; the original is trained once with ``cfg.seed``).

    ``varshney2025`` (and its ``-stage1``) with ``lam = 0`` and ``lam_rule = "retrain"`` gets
    the retrain-calibrated threshold (``varshney_calibrated``), as in notebooks 02 and 03; with
    ``lam_rule = "kappa_e0"`` the method sets lambda = kappa * e0 itself.
    """
    rcfg = run_config(cfg, family, method, **overrides)
    images, split = data(rcfg)
    if method in TRAINED:
        model, hist = trained_generator(rcfg, method, images, split, force=force)
        wall = float(hist["time_s"].iloc[-1]) if "time_s" in hist and len(hist) else math.nan
        key = cache_key(rcfg, "data", "model", "train") | {"role": method}
        return Run(method, rcfg, model, hist, wall, key)
    original, _ = trained_generator(rcfg, "original", images, split)
    calibrate = (method in VARSHNEY and rcfg.unlearn.lam == 0
                 and rcfg.unlearn.lam_rule == "retrain")
    if calibrate:
        retrain, _ = trained_generator(rcfg, "retrain", images, split)
        rcfg = varshney_calibrated(rcfg, original, retrain, split.forget)
    run = _unlearn_cached(rcfg, original, split, force=force)
    if calibrate:  # the method saw a given lambda; say where it came from
        run.history.attrs["lambda_source"] = "retrain: d(original, retrained) on the forget probe"
    return run


# ----------------------------------------------------------------------------- completions
EVAL_SUBSETS = ("forget", "retain", "forget_train")


def test_images(cfg: RunConfig, subset: str, *, limit: int | None = None) -> torch.Tensor:
    """The images a table is scored on: the held-out ``"forget"`` / ``"retain"`` test images,
    or ``"forget_train"`` = the forget training images (what was unlearned; Varshney & Torra's
    gap to retrain and membership inference): ``EVAL_IMAGES[scale]`` of them, evenly spaced
    over the set (every class), float or uint8 [N, 3, S, S]; ``limit`` caps that number (the
    appendix sweeps score fewer images per point)."""
    return take(*test_rows(cfg, subset, limit=limit))


def test_rows(cfg: RunConfig, subset: str, *, limit: int | None = None) -> tuple[Any, torch.Tensor]:
    """The image set behind ``test_images`` and the rows it takes (``evaluation.full_reference``
    reads their files)."""
    split = data(cfg)[1]
    images = {"forget": split.forget_test, "retain": split.retain_test,
              "forget_train": split.forget}.get(subset)
    if images is None:
        raise ValueError(f"unknown subset {subset!r}; choose one of {', '.join(EVAL_SUBSETS)}")
    n = EVAL_IMAGES[cfg.scale]
    n = len(images) if n is None else n
    return images, spread(len(images), n if limit is None else min(n, limit))


def completions(run: Run, task: str, subset: str, *, limit: int | None = None,
                force: bool = False) -> torch.Tensor:
    """``run``'s completions of ``test_images(run.cfg, subset, limit=limit)`` for ``task`` (a
    mask name), cached: uint8 [N, 3, S, S]. The sampler seed is ``cfg.seed``
    (``evaluation.complete``)."""
    mask = make_mask(task, run.cfg.data.image_size)  # validates the task name first
    truth = test_images(run.cfg, subset, limit=limit)
    # run.key holds the seed (sampler: cfg.seed + 2000) and everything that made the model
    key = run.key | {"method": run.name, "completions": {
        "task": task, "subset": subset, "n_images": len(truth)}}

    def compute() -> dict[str, torch.Tensor]:
        return {"x": to_uint8(complete(run.model, truth, mask, run.cfg))}

    return load_or_compute(key, f"completions_{task}_{subset}.pt", compute, scale=run.cfg.scale,
                           force=force)["x"]
