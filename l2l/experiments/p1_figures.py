"""Li et al. (ICLR 2024) Figures 1-4, from the run store: image panels, the method's objects and
loss curves, and the T-SNE of hole embeddings with a distance per panel.

Every panel reads the cached completions of the test images (``store.completions``), so the
same images appear for every method and no model completes them twice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from l2l.config import RunConfig
from l2l.data import make_mask, masked_input, spread, take, to_uint8
from l2l.experiments.p1_tables import MAIN_TASKS, P1_FAMILIES, available
from l2l.experiments.store import completions, feature_extractor, test_images, unlearned
from l2l.metrics import hole_crop
from l2l.privacy import tsne_groups
from l2l.unlearn.ops import noise_image

FIG_TASK = MAIN_TASKS["tab1_main_8x8"]  # every figure shows Table 1's task
TEASER_METHODS = ("original", "li2024")
FIG3_METHODS = ("original", "max_loss", "noisy_label", "retain_label", "random_encoder", "li2024",
                "li2024-proxy", "retrain")
TSNE_POINTS = {"smoke": 8, "small": 50, "paper": 50, "paper-dry": 8}  # per group (Li et al.: 50)
TSNE_GROUPS = ("unlearned, forget", "unlearned, retain", "ground truth, forget",
               "ground truth, retain")


def figure_methods(cfg: RunConfig, methods: tuple[str, ...],
                   families: tuple[str, ...] = P1_FAMILIES) -> tuple[str, ...]:
    """``methods`` without those some family cannot run (``p1_tables.available``: the retrain
    reference at paper scale without ``model.retrain_checkpoint``), so every family's panel has
    the same columns."""
    return tuple(m for m in methods if all(available(cfg, f, m) for f in families))


def completion_panels(cfg: RunConfig, family: str, methods: tuple[str, ...], *, n: int,
                      task: str = FIG_TASK) -> dict[str, torch.Tensor]:
    """``{subset: uint8 [2 + len(methods), n, 3, S, S]}``: ground truth, masked input, then each
    method's completion (seed 0) of the same ``n`` test images (evenly spaced over the classes)."""
    runs = [unlearned(cfg, family, m) for m in methods]
    mask = make_mask(task, runs[0].cfg.data.image_size)
    panels = {}
    for subset in ("forget", "retain"):
        truth = test_images(runs[0].cfg, subset)
        idx = spread(len(truth), n)
        rows = [to_uint8(truth[idx]), to_uint8(masked_input(truth[idx], mask))]
        rows += [completions(r, task, subset)[idx] for r in runs]
        panels[subset] = torch.stack(rows)
    return panels


# ----------------------------------------------------------------------------- Fig. 2
def method_objects(cfg: RunConfig, family: str) -> dict[str, Any]:
    """What Fig. 2 draws, read off the real objects of one ``li2024`` run: parameter counts of
    the trainable encoder E_theta, the frozen copy E_theta0 and the frozen decoder D, the shapes
    of the input, the noise input and the embedding (one per map), alpha and the step count."""
    run = unlearned(cfg, family, "li2024")
    model = run.model
    x = test_images(run.cfg, "forget")[:2]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        z = model.encode(x, make_mask(FIG_TASK, x.shape[-1]).expand(2, 1, -1, -1))
    maps = z if isinstance(z, (list, tuple)) else [z]  # diffusion: one map per encoder level
    count = lambda ps: int(sum(p.numel() for p in ps))  # noqa: E731
    return {"family": family, "encoder_params": count(model.encoder_parameters()),
            "decoder_params": count(model.decoder_parameters()),
            "image_shape": tuple(x.shape[1:]),
            "noise_shape": tuple(noise_image(model, x, gen).shape[1:]),
            "embedding_shapes": [tuple(m.shape[1:]) for m in maps],
            "alpha": run.cfg.unlearn.alpha, "steps": run.cfg.unlearn.steps}


def loss_curves(cfg: RunConfig, family: str) -> pd.DataFrame:
    """L_F and L_R of the ``li2024`` run (seed 0) per logged step: step, term, value."""
    hist = unlearned(cfg, family, "li2024").history
    long = hist.melt(id_vars="step", value_vars=["loss_forget", "loss_retain"], var_name="term")
    long["term"] = long["term"].map({"loss_forget": "L_F (forget)", "loss_retain": "L_R (retain)"})
    return long.assign(family=family)


# ----------------------------------------------------------------------------- Fig. 4
def tsne_panel(cfg: RunConfig, family: str, *, method: str = "li2024",
               n: int | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Li et al.'s T-SNE (Fig. 4) for one family: ``n`` points per group (``TSNE_GROUPS``: the
    unlearned model's completions and the ground truth, forget and retain test images), hole
    embeddings of the evaluation extractor, 2-D t-SNE at perplexity 20 (or (4n - 1) / 3).

    Returns (points: x, y, group, family) and a distance row measured in the embedding space
    (t-SNE distances are not metric): ``d_forget`` = distance between the centroids of the
    unlearned-forget and ground-truth-forget clouds, ``d_retain`` likewise, and their ratio.
    """
    n = TSNE_POINTS[cfg.scale] if n is None else n
    run = unlearned(cfg, family, method)
    ext = feature_extractor(run.cfg)
    mask = make_mask(FIG_TASK, run.cfg.data.image_size)
    size = run.cfg.data.image_size
    feats: dict[str, np.ndarray] = {}
    for subset in ("forget", "retain"):
        truth = test_images(run.cfg, subset)
        idx = spread(len(truth), n)
        out = take(completions(run, FIG_TASK, subset), idx)
        feats[f"unlearned, {subset}"] = ext.features(hole_crop(out, mask, size))
        feats[f"ground truth, {subset}"] = ext.features(hole_crop(truth[idx], mask, size))
    points = tsne_groups({g: feats[g] for g in TSNE_GROUPS}, seed=cfg.seed).assign(family=family)
    points = points[["x", "y", "family", "group"]]
    centre = {g: feats[g].mean(axis=0) for g in TSNE_GROUPS}
    d_f = float(np.linalg.norm(centre["unlearned, forget"] - centre["ground truth, forget"]))
    d_r = float(np.linalg.norm(centre["unlearned, retain"] - centre["ground truth, retain"]))
    dist = {"family": family, "method": method, "d_forget": d_f, "d_retain": d_r,
            "ratio": d_f / d_r if d_r > 0 else float("inf"), "n_per_group": int(len(idx))}
    return points, dist


def tsne_figure_data(cfg: RunConfig, families: tuple[str, ...]
                     ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Points and distance rows of every family's T-SNE panel, and their sidecar provenance."""
    parts = [tsne_panel(cfg, f) for f in families]
    distances = pd.DataFrame([d for _, d in parts])
    n = int(distances["n_per_group"].iloc[0])
    prov = feature_extractor(cfg).provenance() | {
        "features": "hole crop (Table 1's task)", "method": "li2024", "seed_offset": 0,
        "n_images": 4 * n, "n_per_group": n, "perplexity": "min(20, (N - 1) / 3)",
        "impl": "scikit-learn TSNE (l2l.privacy.tsne_embed)", "seed": cfg.seed,
        "distance": "Euclidean distance between group centroids in the embedding space"}
    return pd.concat([p for p, _ in parts], ignore_index=True), distances, prov


def panel_scores(panels: dict[str, dict[str, torch.Tensor]], methods: tuple[str, ...], *,
                 task: str = FIG_TASK) -> pd.DataFrame:
    """Hole MSE to the ground truth of every image shown in ``panels`` (family -> subset ->
    ``completion_panels`` output): family, subset, image, method, mse_hole. The numbers a reader
    of the figure would ask for, saved beside it."""
    rows = []
    for family, by_subset in panels.items():
        for subset, panel in by_subset.items():
            x = panel.float() / 255
            mask = make_mask(task, x.shape[-1])
            hole = mask.sum() * 3
            for j, method in enumerate(methods):
                err = ((x[2 + j] - x[0]) ** 2 * mask).sum(dim=(1, 2, 3)) / hole
                rows += [{"family": family, "subset": subset, "image": i, "method": method,
                          "mse_hole": float(e)} for i, e in enumerate(err)]
    return pd.DataFrame(rows)
