"""Model families behind one explicit registry: ``build_model(family, size)``.

Every family exposes the same I2I interface (used by training, unlearning and evaluation):
``encode(x, mask)``, ``decode(z, mask)``, ``complete(x, mask, *, generator)``,
``training_loss(x, *, generator, ...)``, ``encoder_parameters()``, ``decoder_parameters()``.
Images are float [B, 3, H, W] in [0, 1]; masks float [B, 1, H, W] with 1 = hole.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from l2l.models.autoencoder import AutoEncoder, build_autoencoder
from l2l.models.classifier import DomainClassifier
from l2l.models.diffusion import Palette, build_palette
from l2l.models.mae import MAE, build_mae
from l2l.models.mage import MAGE, build_mage

REGISTRY: dict[str, Callable[..., torch.nn.Module]] = {
    "mae": build_mae,
    "vqgan": build_mage,  # MAGE-style: VQ tokenizer + masked-token ViT
    "diffusion": build_palette,  # Palette-style conditional U-Net
    "autoencoder": build_autoencoder,
}


def build_model(family: str, size: str, **overrides) -> torch.nn.Module:
    """A freshly initialised model of ``family`` at ``size`` (e.g. ``"mae", "tiny"``)."""
    if family not in REGISTRY:
        raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[family](size, **overrides)


def model_for(cfg) -> torch.nn.Module:
    """``build_model`` of ``cfg.model`` (family, size and, for diffusion, ``sample_steps``)."""
    m = cfg.model
    overrides = {"sample_steps": m.sample_steps} if m.sample_steps else {}
    return build_model(m.family, m.size, **overrides)


__all__ = ["MAE", "MAGE", "Palette", "AutoEncoder", "DomainClassifier", "REGISTRY", "build_model",
           "model_for"]
