"""Experiment runners: one ``run_<group>(cfg)`` per notebook, each returning tidy tables.

Every trained artefact goes through the config-keyed cache (``l2l.io.load_or_compute``), so a
rerun only recomputes what its config changed.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from l2l.config import RunConfig, cache_key, resolve_device
from l2l.data import ImageSet, Split, load_data, make_mask, masked_input, take, to_uint8
from l2l.io import checkpoint_dict, load_or_compute
from l2l.metrics import completion_metrics, mean_fill, metric_provenance, noise_fill
from l2l.models import DomainClassifier, build_model
from l2l.train import train_classifier, train_generator
from l2l.unlearn import unlearn


def _restore(ckpt: dict[str, Any], model: torch.nn.Module) -> tuple[torch.nn.Module, pd.DataFrame]:
    model.load_state_dict(ckpt["model"])
    return model.eval(), pd.DataFrame(ckpt.get("history", {}))


def domain_classifier(cfg: RunConfig, images: ImageSet, *, force: bool = False) -> DomainClassifier:
    """The small-scale feature network (FID / IS / cosine), trained on all classes, cached."""
    key = cache_key(cfg, "data") | {"classifier": [cfg.train.classifier_steps, cfg.train.classifier_lr]}
    net = DomainClassifier(n_classes=cfg.data.n_classes)

    def compute() -> dict[str, Any]:
        hist = train_classifier(net, images.x_train, images.y_train, cfg)
        return checkpoint_dict(net, cfg, step=cfg.train.classifier_steps) | {"history": hist.to_dict("list")}

    ckpt = load_or_compute(key, "classifier.pt", compute, scale=cfg.scale, force=force)
    return _restore(ckpt, net)[0].to(resolve_device(cfg.device))


def trained_generator(cfg: RunConfig, role: str, images: ImageSet, split: Split, *,
                      force: bool = False) -> tuple[torch.nn.Module, pd.DataFrame]:
    """``role="original"``: trained on every training image; ``"retrain"``: on retain only."""
    if role not in ("original", "retrain"):
        raise ValueError(f"unknown role {role!r}; choose 'original' or 'retrain'")
    data = images.x_train if role == "original" else split.retain
    key = cache_key(cfg, "data", "model", "train") | {"role": role}
    torch.manual_seed(cfg.seed)  # weight initialisation
    model = build_model(cfg.model.family, cfg.model.size)

    def compute() -> dict[str, Any]:
        hist = train_generator(model, data, cfg, desc=role)
        return checkpoint_dict(model, cfg, step=cfg.train.steps) | {"history": hist.to_dict("list")}

    ckpt = load_or_compute(key, f"{role}.pt", compute, scale=cfg.scale, force=force)
    return _restore(ckpt, model)


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


@torch.no_grad()
def complete(model: Any, images: torch.Tensor, mask: torch.Tensor, cfg: RunConfig, *,
             batch_size: int = 250) -> torch.Tensor:
    """Completed images float [N, 3, S, S] in [0, 1].

    ``model`` is a family model or one of the reference fills ``"mean fill"`` / ``"noise fill"``.
    """
    device = resolve_device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed + 2000)
    outs = []
    for start in range(0, len(images), batch_size):
        x = take(images, torch.arange(start, min(start + batch_size, len(images)))).to(device)
        m = mask.to(device).expand(len(x), 1, *x.shape[-2:])
        if model == "mean fill":
            out = mean_fill(x, m)
        elif model == "noise fill":
            out = noise_fill(x.cpu(), m.cpu(), generator=gen).to(device)
        else:
            out = model.to(device).eval().complete(x, m, generator=gen)
        outs.append(out.cpu())
    return torch.cat(outs)


def completion_table(models: dict[str, Any], split: Split, net: DomainClassifier, cfg: RunConfig,
                     *, mask_name: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per model: forget_* and retain_* completion metrics on the held-out test images.

    Returns the table and the metric provenance for the sidecar.
    """
    mask_name = mask_name or cfg.eval.hole
    mask = make_mask(mask_name, cfg.data.image_size)
    device = resolve_device(cfg.device)
    rows = []
    for name, model in models.items():
        row: dict[str, Any] = {"model": name, "mask": mask_name}
        for subset, images in (("forget", split.forget_test), ("retain", split.retain_test)):
            outputs = complete(model, images, mask, cfg)
            metrics = completion_metrics(outputs, take(images, torch.arange(len(images))), mask,
                                         net, n_boot=cfg.eval.n_boot, seed=cfg.seed, device=device)
            row.update({f"{subset}_{k}": v for k, v in metrics.items()})
        rows.append(row)
    prov = metric_provenance(net, n_images=len(split.forget_test), image_size=cfg.data.image_size,
                             n_boot=cfg.eval.n_boot) | {"mask": mask_name}
    return pd.DataFrame(rows), prov


def sample_panel(models: dict[str, Any], split: Split, cfg: RunConfig) -> dict[str, torch.Tensor]:
    """uint8 [rows, n, 3, S, S] per subset: ground truth, masked input, then each model's output,
    for ``cfg.eval.n_samples_figure`` test images spread over the classes."""
    mask = make_mask(cfg.eval.hole, cfg.data.image_size)
    panels = {}
    for subset, images in (("forget", split.forget_test), ("retain", split.retain_test)):
        n = cfg.eval.n_samples_figure
        idx = torch.linspace(0, len(images) - 1, n).round().long()
        x = take(images, idx)
        rows = [x, masked_input(x, mask)] + [complete(m, images[idx], mask, cfg) for m in models.values()]
        panels[subset] = to_uint8(torch.stack(rows))
    return panels


def run_quickstart(cfg: RunConfig, *, force: bool = False) -> dict[str, Any]:
    """The smallest end-to-end run (notebook 00): train original and retrain, unlearn with
    Li et al., score mean fill / noise fill / original / retrain / unlearned.

    Returns ``{"table", "provenance", "history", "samples"}``.
    """
    images, split = load_data(cfg)
    net = domain_classifier(cfg, images, force=force)
    original, _ = trained_generator(cfg, "original", images, split, force=force)
    retrain, _ = trained_generator(cfg, "retrain", images, split, force=force)
    unlearned, history = unlearned_model(cfg, original, split, force=force)
    models = {"mean fill": "mean fill", "noise fill": "noise fill", "original": original,
              "retrain": retrain, "unlearned": unlearned}
    table, prov = completion_table(models, split, net, cfg)
    samples = sample_panel({k: models[k] for k in ("original", "unlearned", "retrain")}, split, cfg)
    return {"table": table, "provenance": prov, "history": history, "samples": samples}


def selectivity(table: pd.DataFrame, *, metric: str = "fid_hole", reference: str = "original",
                model: str = "unlearned") -> pd.DataFrame:
    """How much ``model`` moved ``metric`` on forget vs retain, relative to ``reference``.

    Returns one row per subset with both values, their ratio and the bootstrap sigma of the
    model's value (the acceptance test of the quickstart reads this).
    """
    ref = table.set_index("model").loc[reference]
    new = table.set_index("model").loc[model]
    rows = []
    for subset in ("forget", "retain"):
        a, b = ref[f"{subset}_{metric}"], new[f"{subset}_{metric}"]
        rows.append({"subset": subset, "metric": metric, reference: a, model: b,
                     "ratio": b / a, f"{model}_std": new[f"{subset}_{metric}_std"]})
    return pd.DataFrame(rows)
