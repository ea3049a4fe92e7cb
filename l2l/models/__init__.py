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


def input_size(model: torch.nn.Module) -> int | None:
    """The image side a model is built for (None: any size, e.g. the AutoEncoder)."""
    spec = getattr(model, "spec", None)
    for path in (("img_size",), ("tokenizer", "img_size"), ("unet", "image_size")):
        value = spec
        for name in path:
            value = getattr(value, name, None)
        if isinstance(value, int):
            return value
    return None


def model_for(cfg) -> torch.nn.Module:
    """``build_model`` of ``cfg.model`` (family, size and, for diffusion, ``sample_steps``);
    a size built for other images than ``cfg.data.image_size`` is a ValueError."""
    m = cfg.model
    overrides = {"sample_steps": m.sample_steps} if m.sample_steps else {}
    model = build_model(m.family, m.size, **overrides)
    side = input_size(model)
    if side is not None and side != cfg.data.image_size:
        raise ValueError(f"model size {m.size!r} of family {m.family!r} takes {side}-px images, but "
                         f"data.image_size is {cfg.data.image_size}: set image_size={side} or "
                         f"choose a size built for {cfg.data.image_size} px")
    return model


__all__ = ["MAE", "MAGE", "Palette", "AutoEncoder", "DomainClassifier", "REGISTRY", "build_model",
           "input_size", "model_for"]
