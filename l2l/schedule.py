"""The learning-rate schedule of every l2l training loop (generators, tokenizer, unlearning)."""

from __future__ import annotations

import math


def lr_at(step: int, total: int, base: float, warmup: float) -> float:
    """Linear warm-up over ``warmup * total`` steps, then half-cycle cosine to 0 (MAE/MAGE)."""
    n_warm = max(1, int(round(warmup * total)))
    if step < n_warm:
        return base * (step + 1) / n_warm
    progress = (step - n_warm) / max(1, total - n_warm)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
