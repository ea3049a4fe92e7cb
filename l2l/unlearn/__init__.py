"""Unlearning methods behind one call: ``unlearn(original, method, forget=, retain=, cfg=)``.

Methods (Li et al. 2024: Eq. 10 and the four baselines of their Tables 1-2; Varshney & Torra
2025 as l2l re-implements it):

=================  ==========================================================================
``li2024``         Li et al. Eq. 10: encoder only; forget embedding -> original encoder's
                   embedding of the family's noise input; retain embedding kept
``li2024-proxy``   the same with the proxy retain set (classes outside forget and retain); the
                   caller passes that set as ``retain`` (``experiments.retain_set``)
``max_loss``       full model: task loss on retain - alpha x task loss on forget
``noisy_label``    full model: task loss on retain + alpha x task loss on forget vs noise
``retain_label``   full model: L2 to the original's outputs; forget -> retain samples' outputs
``random_encoder`` encoder only: forget embedding -> Gaussian tensor with the batch statistics
``varshney2025``   gradient ascent on forget until the forget distance reaches lambda, then
                   fine-tuning on retain (``l2l.unlearn.varshney``); ``varshney2025-stage1``
                   is its stage 1 alone (ascent to lambda, no retention)
``original``       unchanged copy; ``finetune``: retain-only fine-tuning; ``retrain``: from
                   scratch on retain with ``cfg.train``
=================  ==========================================================================

The original model is never modified: students and teachers are deep copies. The family
specifics (noise input, outputs, task loss, train-time T) live in ``l2l.unlearn.ops``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import torch

from l2l.config import RunConfig, unlearn_seed
from l2l.images import check_images
from l2l.models import input_size
from l2l.profile import timed
from l2l.runtime import seeded_run
from l2l.unlearn import methods
from l2l.unlearn.loop import HISTORY_COLUMNS, frozen_copy, history
from l2l.unlearn.ops import noise_image
from l2l.unlearn.varshney import varshney2025, varshney2025_stage1

METHOD_FUNCTIONS: dict[str, Callable[..., tuple[torch.nn.Module, list[dict[str, Any]]]]] = {
    "li2024": methods.by_objective("li2024"),
    "li2024-proxy": methods.by_objective("li2024"),
    **{name: methods.by_objective(name) for name in
       ("max_loss", "noisy_label", "retain_label", "random_encoder")},
    "varshney2025": varshney2025,
    "varshney2025-stage1": varshney2025_stage1,
    "original": methods.original_model,
    "finetune": methods.by_objective("finetune"),
    "retrain": methods.retrain,
}
METHODS = tuple(METHOD_FUNCTIONS)

__all__ = ["METHODS", "HISTORY_COLUMNS", "unlearn", "frozen_copy", "noise_image"]


def unlearn(original: torch.nn.Module, method: str, *, forget: Any, retain: Any, cfg: RunConfig,
            progress: bool = True) -> tuple[torch.nn.Module, pd.DataFrame]:
    """Unlearn ``forget`` from ``original`` while keeping ``retain``.

    Args:
        original: a trained family model; left untouched.
        method: one of ``METHODS``.
        forget: forget images, uint8/float [N, 3, S, S] tensor or indexable data set.
        retain: retain images (or the proxy retain set), same format.
        cfg: ``cfg.unlearn`` (alpha, lr, steps, batch size per subset, T, clipping, the
            Varshney & Torra fields), ``cfg.train`` for ``retrain``, ``cfg.seed``.

    Returns:
        (model in eval mode, history: one row per logged step with ``HISTORY_COLUMNS``; for
        ``varshney2025`` ``history.attrs["lambda_source"]`` says how lambda was set).
    """
    if method not in METHOD_FUNCTIONS:
        raise ValueError(f"unknown unlearning method {method!r}; choose one of {', '.join(METHODS)}")
    for name, data in (("forget", forget), ("retain", retain)):
        if len(data) == 0:
            raise ValueError(f"the {name} set is empty")
        check_images(data, f"unlearn() {name} set", size=input_size(original))
    with seeded_run(unlearn_seed(cfg)), timed("unlearn"):  # dropout and any other global draw: from the config
        model, rows = METHOD_FUNCTIONS[method](original, forget, retain, cfg, progress)
    hist = history(rows)
    if rows and "lambda_source" in rows[0]:
        hist.attrs["lambda_source"] = rows[0]["lambda_source"]
    return model, hist
