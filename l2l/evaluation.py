"""Evaluation of I2I completions: complete held-out images with a model or a reference fill and
score them on forget and retain test sets (small scale: the domain feature network).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from l2l.config import RunConfig, resolve_device
from l2l.data import Split, make_mask, masked_input, take, to_uint8
from l2l.metrics import completion_metrics, hole_mse, mean_fill, metric_provenance, noise_fill
from l2l.models import DomainClassifier

REFERENCE_FILLS = ("mean fill", "noise fill")


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


def sample_panel(models: dict[str, Any], split: Split, cfg: RunConfig, *,
                 mask_name: str | None = None) -> dict[str, torch.Tensor]:
    """uint8 [rows, n, 3, S, S] per subset: ground truth, masked input, then each model's output,
    for ``cfg.eval.n_samples_figure`` test images spread over the classes."""
    mask = make_mask(mask_name or cfg.eval.hole, cfg.data.image_size)
    panels = {}
    for subset, images in (("forget", split.forget_test), ("retain", split.retain_test)):
        n = cfg.eval.n_samples_figure
        idx = torch.linspace(0, len(images) - 1, n).round().long()
        x = take(images, idx)
        rows = [x, masked_input(x, mask)] + [complete(m, images[idx], mask, cfg) for m in models.values()]
        panels[subset] = to_uint8(torch.stack(rows))
    return panels


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


def hole_mse_table(models: dict[str, Any], split: Split, cfg: RunConfig, *,
                   max_images: int = 500) -> pd.DataFrame:
    """Hole MSE (test hole ``eval.hole``) of each model on forget *training* images (what was
    unlearned), forget test and retain test images (at most ``max_images`` each): the cheap
    table behind "gap to retrain" (spec paper2 Sec. 4.9)."""
    mask = make_mask(cfg.eval.hole, cfg.data.image_size)
    subsets = {"forget_train": split.forget, "forget_test": split.forget_test,
               "retain_test": split.retain_test}
    rows = []
    for name, model in models.items():
        row: dict[str, Any] = {"model": name}
        for subset, images in subsets.items():
            x = take(images, torch.arange(min(max_images, len(images))))
            out = complete(model, x, mask, cfg)
            row[f"{subset}_mse_hole"] = hole_mse(out, x, mask).mean().item()
        rows.append(row)
    return pd.DataFrame(rows)
