"""Evaluation of I2I completions: complete held-out images with a model or a reference fill and
score them on forget and retain test sets with a feature extractor (``l2l.extractors``: the
domain network at small scale, Inception / CLIP at paper scale).

``evaluate`` gives one model's tidy metric table for one task; ``gap_to_retrain`` compares it
with the retrained reference (Varshney & Torra's target); ``completion_table`` is the wide
one-row-per-model table the notebooks print.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from l2l import dist
from l2l.config import RunConfig, resolve_device
from l2l.data import (FileImages, Split, check_images, make_mask, masked_input, spread, take,
                      take_spread, to_uint8)
from l2l.extractors import Extractor, get_extractor
from l2l.metrics import completion_metrics, hole_mse, metric_provenance
from l2l.protocol import full_resolution_features
from l2l.profile import timed
from l2l.runtime import seeded_run
from l2l.models import DomainClassifier, input_size

@torch.no_grad()
def complete(model: Any, images: torch.Tensor, mask: torch.Tensor, cfg: RunConfig, *,
             batch_size: int = 250) -> torch.Tensor:
    """Completed images float [N, 3, S, S] in [0, 1].

    ``model`` is a family model or one of the reference fills ``"mean fill"`` / ``"noise fill"``.
    Sampling randomness comes from one generator seeded ``seed + 2000``. Under torchrun each
    process completes a contiguous block of the images (``dist.map_rows``) with its generator
    seeded ``seed + 2000 + 7919 * rank``: deterministic for a world size, but the samples of the
    sampling families (VQ-GAN, diffusion) differ from one process's. ``precision="bf16"`` runs the
    model under bfloat16 autocast (outputs float32).
    """
    device = resolve_device(cfg.device)
    check_images(images, "complete()", size=None if isinstance(model, str) else input_size(model))

    seed = cfg.seed + 2000 + 7919 * dist.rank_world()[0]

    def block(part: Any) -> torch.Tensor:
        with seeded_run(seed), timed("complete"):
            return _complete_block(model, part, mask, device, cfg.precision, batch_size, seed)

    return dist.map_rows(block, images)


def _complete_block(model: Any, part: Any, mask: torch.Tensor, device: str, precision: str,
                    batch_size: int, seed: int) -> torch.Tensor:
    """``complete`` of one process's rows, with its sampler generator seeded ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    outs = []
    for start in range(0, len(part), batch_size):
        x = take(part, torch.arange(start, min(start + batch_size, len(part)))).to(device)
        m = mask.to(device).expand(len(x), 1, *x.shape[-2:])
        if model == "mean fill":
            out = mean_fill(x, m)
        elif model == "noise fill":
            out = noise_fill(x.cpu(), m.cpu(), generator=gen).to(device)
        else:
            with dist.autocast(precision, device):
                out = model.to(device).eval().complete(x, m, generator=gen)
        outs.append(out.float().cpu())
    if not outs:
        return torch.empty(0, 3, *mask.shape[-2:])
    return torch.cat(outs)


def as_extractor(extractor: Extractor | DomainClassifier, cfg: RunConfig) -> Extractor:
    """An ``Extractor``; a bare trained ``DomainClassifier`` becomes the ``domain`` one."""
    if isinstance(extractor, DomainClassifier):
        return get_extractor("domain", cfg, net=extractor)
    if not isinstance(extractor, Extractor):
        raise TypeError(f"need an Extractor or a DomainClassifier, got {type(extractor).__name__}")
    return extractor


SUBSETS = ("forget", "retain")


def _test_rows(split: Split, subset: str, max_images: int | None) -> tuple[Any, torch.Tensor]:
    """The held-out test set of ``subset`` and the rows scored: ``max_images`` evenly spaced."""
    images = {"forget": split.forget_test, "retain": split.retain_test}[subset]
    n = len(images) if max_images is None else min(max_images, len(images))
    return images, spread(len(images), n)


_FULL_RES: dict[tuple[str, str, tuple[Path, ...]], Any] = {}


def full_reference(cfg: RunConfig, images: Any, rows: torch.Tensor,
                   extractor: Extractor) -> np.ndarray | None:
    """The ``full_reference`` of ``completion_metrics`` for test images ``images[rows]``: None
    for ``eval.fid_reference = "matched"``; for ``"full_resolution"`` (Li et al.'s released
    ImageNet protocol, ``l2l.protocol``) the features of their files at full resolution, computed
    once per process for an extractor and file list (every model of a table is scored against
    the same reference)."""
    if cfg.eval.fid_reference == "matched":
        return None
    if not isinstance(images, FileImages):
        raise ValueError("eval.fid_reference = 'full_resolution' needs test images read from "
                         "files (the paper-scale ImageNet loader); use 'matched'")
    files = tuple(images[rows].files)
    info = extractor.provenance()
    key = (str(info.get("extractor")), str(info.get("weights_sha256")), files)
    if key not in _FULL_RES:
        _FULL_RES[key] = full_resolution_features(list(files), extractor)
    return _FULL_RES[key]


def _reference_label(cfg: RunConfig) -> dict[str, str]:
    """Sidecar label of a non-default FID reference (nothing for "matched", l2l's default)."""
    if cfg.eval.fid_reference == "matched":
        return {}
    return {"fid_reference": "fid_full: the test files at full resolution, as released (Li et "
                             "al.); fidmatched = against the Resize + CentreCrop test images"}


def _metric_rows(model: Any, split: Split, mask: torch.Tensor, extractor: Extractor,
                 cfg: RunConfig, max_images: int | None) -> dict[str, dict[str, float]]:
    """subset -> ``completion_metrics`` row of ``model`` on that held-out test set. With
    ``eval.fid_reference = "full_resolution"`` (Li et al.'s released ImageNet protocol) the
    full-image FID is taken against the test files at full resolution and the matched one is
    kept as ``fidmatched_full`` (``l2l.protocol``)."""
    out = {}
    for subset in SUBSETS:
        images, rows = _test_rows(split, subset, max_images)
        x = take(images, rows)
        y = complete(model, x, mask, cfg)
        with timed("score"):
            out[subset] = completion_metrics(
                y, x, mask, extractor, n_boot=cfg.eval.n_boot, seed=cfg.seed,
                full_reference=full_reference(cfg, images, rows, extractor))
    return out


def completion_table(models: dict[str, Any], split: Split, extractor: Extractor | DomainClassifier,
                     cfg: RunConfig, *, mask_name: str | None = None,
                     max_images: int | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One row per model: forget_* and retain_* completion metrics on the held-out test images
    (``max_images`` of each, evenly spaced so every class is in, default all).

    Returns the table and the metric provenance for the sidecar.
    """
    mask_name = mask_name or cfg.eval.hole
    mask = make_mask(mask_name, cfg.data.image_size)
    ext = as_extractor(extractor, cfg)
    rows = []
    for name, model in models.items():
        row: dict[str, Any] = {"model": name, "mask": mask_name}
        for subset, metrics in _metric_rows(model, split, mask, ext, cfg, max_images).items():
            row.update({f"{subset}_{k}": v for k, v in metrics.items()})
        rows.append(row)
    n = len(_test_rows(split, "forget", max_images)[1])
    prov = metric_provenance(ext, n_images=n, image_size=cfg.data.image_size,
                             n_boot=cfg.eval.n_boot, seed=cfg.seed) | {"mask": mask_name} \
        | _reference_label(cfg)
    return pd.DataFrame(rows), prov


TIDY_COLUMNS = ["model", "task", "subset", "region", "metric", "value", "std", "n_images"]


def tidy_metrics(m: dict[str, float]) -> list[dict[str, Any]]:
    """A ``completion_metrics`` dict as tidy rows (region, metric, value, std, n_images): key
    ``<metric>_<region>`` with its ``<key>_std`` (nan where there is none)."""
    rows = []
    for key, value in m.items():
        if key == "n_images" or key.endswith("_std"):
            continue
        metric, region = key.split("_")
        rows.append({"region": region, "metric": metric, "value": value,
                     "std": m.get(f"{key}_std", math.nan), "n_images": int(m["n_images"])})
    return rows


def evaluate(model: Any, split: Split, task: str, cfg: RunConfig, *,
             extractor: Extractor | DomainClassifier, name: str = "model",
             max_images: int | None = None) -> pd.DataFrame:
    """Complete the held-out forget and retain test images for ``task`` and score them.

    Args:
        model: a family model or a reference fill (``"mean fill"``, ``"noise fill"``).
        split: the data split; its ``forget_test`` / ``retain_test`` images are used.
        task: the I2I task = a mask name of ``l2l.data.make_mask`` (e.g. ``"centre_half"``,
            ``"centre_quarter"``, ``"outpaint_4"``).
        cfg: run config (device, seed, ``eval.n_boot``).
        extractor: an ``l2l.extractors.Extractor`` (or the trained domain net).
        name: the ``model`` column. max_images: N images of each test set, evenly spaced over
            it (``l2l.data.spread``: every class), default all.

    Returns:
        Tidy DataFrame, one row per (subset, region, metric), columns ``TIDY_COLUMNS``:
        metric in fid, kid, is, cos (region full / hole), mse, psnr (region hole); ``std`` is the
        bootstrap std (FID, cosine, MSE), the subset std (KID) or the split std (IS); nan where
        there is none (PSNR) or the extractor has no class outputs (IS). Provenance (extractor,
        weights sha256, resize, image count, seed, versions) is in ``DataFrame.attrs``.
    """
    mask = make_mask(task, cfg.data.image_size)
    ext = as_extractor(extractor, cfg)
    rows = [{"model": name, "task": task, "subset": subset, **r}
            for subset, m in _metric_rows(model, split, mask, ext, cfg, max_images).items()
            for r in tidy_metrics(m)]
    table = pd.DataFrame(rows, columns=TIDY_COLUMNS)
    table.attrs = metric_provenance(ext, n_images=int(table["n_images"].iloc[0]),
                                    image_size=cfg.data.image_size, n_boot=cfg.eval.n_boot,
                                    seed=cfg.seed) | {"mask": task} | _reference_label(cfg)
    return table


def gap_to_retrain(table: pd.DataFrame, retrain: pd.DataFrame) -> pd.DataFrame:
    """How far a model's metrics are from the retrained reference (l2l's reading of Varshney &
    Torra 2025, abstract: "comparable to a retrained model").

    Args:
        table: ``evaluate`` output of one or more models. retrain: ``evaluate`` output of the
            retrained model on the same task(s) and images.

    Returns:
        ``table``'s rows with ``retrain`` (the reference value), ``gap`` = value - retrain,
        ``rel_gap`` = gap / |retrain| and ``gap_sigma`` = gap / sqrt(std^2 + std_retrain^2)
        (nan without stds). Realistic unlearning aims at gap ~ 0 on forget and retain alike.

    Raises:
        ValueError: a (task, subset, region, metric) of ``table`` has no retrain value.
    """
    keys = ["task", "subset", "region", "metric"]
    ref = retrain[keys + ["value", "std"]].rename(columns={"value": "retrain", "std": "retrain_std"})
    if ref.duplicated(keys).any():
        raise ValueError("retrain table has several rows per (task, subset, region, metric)")
    out = table.merge(ref, on=keys, how="left", validate="many_to_one")
    if out["retrain"].isna().any():
        missing = out.loc[out["retrain"].isna(), keys].drop_duplicates().to_dict("records")
        raise ValueError(f"no retrain value for {missing}")
    out["gap"] = out["value"] - out["retrain"]
    out["rel_gap"] = out["gap"] / out["retrain"].abs()
    out["gap_sigma"] = out["gap"] / (out["std"] ** 2 + out["retrain_std"] ** 2) ** 0.5
    return out.drop(columns="retrain_std")


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
    unlearned), forget test and retain test images (``max_images`` each, evenly spaced): the cheap
    table behind "gap to retrain" (``gap_to_retrain``)."""
    mask = make_mask(cfg.eval.hole, cfg.data.image_size)
    subsets = {"forget_train": split.forget, "forget_test": split.forget_test,
               "retain_test": split.retain_test}
    rows = []
    for name, model in models.items():
        row: dict[str, Any] = {"model": name}
        for subset, images in subsets.items():
            x = take_spread(images, max_images)
            out = complete(model, x, mask, cfg)
            row[f"{subset}_mse_hole"] = hole_mse(out, x, mask).mean().item()
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- reference fills
def _known_stats(x: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and std [B, 3, 1, 1] of the known region."""
    known = (~hole).to(x.dtype)  # [B, 1, H, W]
    count = known.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
    mean = (x * known).sum(dim=(2, 3), keepdim=True) / count
    var = ((x - mean) ** 2 * known).sum(dim=(2, 3), keepdim=True) / count
    return mean, var.sqrt()


def mean_fill(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reference completion: the hole filled with each image's mean known-region colour.

    Args:
        x: float [B, 3, H, W] in [0, 1]. mask: float [B or 1, 1, H, W], 1 = hole.

    Returns:
        float [B, 3, H, W] in [0, 1]; known pixels are bit-identical to ``x``.
    """
    hole = (mask > 0.5).expand(x.shape[0], 1, *x.shape[-2:])
    mean, _ = _known_stats(x, hole)
    return torch.where(hole, mean.expand_as(x), x)


def noise_fill(x: torch.Tensor, mask: torch.Tensor, *,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Reference completion: Gaussian noise with the known region's per-channel mean/std.

    Args:
        x: float [B, 3, H, W] in [0, 1]. mask: float [B or 1, 1, H, W], 1 = hole.
        generator: RNG for the noise (its device is used to draw, then moved to x's).

    Returns:
        float [B, 3, H, W] in [0, 1] (noise clamped); known pixels are bit-identical to ``x``.
    """
    hole = (mask > 0.5).expand(x.shape[0], 1, *x.shape[-2:])
    mean, std = _known_stats(x, hole)
    draw_on = generator.device if generator is not None else x.device
    z = torch.randn(x.shape, generator=generator, device=draw_on, dtype=x.dtype).to(x.device)
    return torch.where(hole, (mean + std * z).clamp(0.0, 1.0), x)
