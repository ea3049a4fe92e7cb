"""Model families, each registered once in ``FAMILIES``: ``build_model(family, size)``.

Every family exposes the same I2I interface (used by training, unlearning and evaluation):
``encode(x, mask)``, ``decode(z, mask)``, ``complete(x, mask, *, generator)``,
``training_loss(x, *, generator, ...)``, ``encoder_parameters()``, ``decoder_parameters()``.
Images are float [B, 3, H, W] in [0, 1]; masks float [B, 1, H, W] with 1 = hole.

What differs between families is a ``Family`` record, and nowhere else: its builder, its
unlearning operations (``l2l.unlearn.ops``), the per-step arguments of its training loss, how
its official checkpoint is laid out and loaded (``l2l.pretrained``), and a frozen pre-processing
part fitted before training (MAGE's VQ tokenizer; ``l2l.experiments.store.frozen_tokenizer``).
A new family is one ``Family`` entry (and its name in ``l2l.config.FAMILIES``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from l2l.models.autoencoder import AutoEncoder, build_autoencoder
from l2l.models.classifier import DomainClassifier
from l2l.models.diffusion import Palette, build_palette, load_palette_state_dict
from l2l.models.mae import MAE, build_mae
from l2l.models.mage import MAGE, build_mage, load_official


def _no_kwargs(cfg: Any, gen: torch.Generator) -> dict[str, Any]:
    return {}


def _mae_mask_ratio(cfg: Any, gen: torch.Generator) -> dict[str, Any]:
    """A mask ratio per step from U(``cfg.train.mask_ratio``): a fixed 0.75 did not learn on CPU."""
    lo, hi = cfg.train.mask_ratio
    return {"mask_ratio": lo + (hi - lo) * torch.rand(1, generator=gen).item()}


def _load_mae(model: torch.nn.Module, state: Mapping[str, Any]) -> None:
    model.load_state_dict(state.get("model", state), strict=True)


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes:
        name: the ``model.family`` value; the models carry it as ``model.family``.
        build: ``(size, **overrides) -> model``, freshly initialised.
        ops: the name of its ``l2l.unlearn.ops.FamilyOps`` class (what "noise input", "out" and
            the task mean for unlearning).
        train_kwargs: ``(cfg, generator) -> dict``, extra per-step ``training_loss`` arguments.
        official_source: where its official checkpoint comes from (said in the error when the
            file is missing); "" = no official release (l2l trains it).
        load_official: ``(model, state) -> None``, strict loading of that checkpoint's contents.
        checkpoint_key: the official file holds ``{checkpoint_key: state dict}``; None = the bare
            state dict (what ``l2l.dryrun`` writes).
        frozen_part: the attribute of a frozen pre-processing module fitted before training
            (``model.train_tokenizer``) and copied, never trained, by retraining and unlearning;
            "" = none.
    """

    name: str
    build: Callable[..., torch.nn.Module]
    ops: str
    train_kwargs: Callable[[Any, torch.Generator], dict[str, Any]] = _no_kwargs
    official_source: str = ""
    load_official: Callable[[torch.nn.Module, Mapping[str, Any]], Any] | None = None
    checkpoint_key: str | None = "model"
    frozen_part: str = ""


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("mae", build_mae, "MAEOps", train_kwargs=_mae_mask_ratio, load_official=_load_mae,
           official_source="mae_visualize_vit_large_ganloss.pth from the MAE repository's "
                           "visualisation demo (facebookresearch/mae)"),
    # MAGE-style: VQ tokenizer + masked-token ViT
    Family("vqgan", build_mage, "VQGANOps", load_official=load_official, frozen_part="vqgan",
           official_source="mage-vitb-1600.pth from the MAGE repository (LTH14/mage)"),
    # Palette-style conditional U-Net
    Family("diffusion", build_palette, "DiffusionOps", load_official=load_palette_state_dict,
           checkpoint_key=None,
           official_source="the Palette Places2 inpainting checkpoint <epoch>_Network.pth "
                           "(Janspiry/Palette-Image-to-Image-Diffusion-Models)"),
    Family("autoencoder", build_autoencoder, "FamilyOps"),
)}


def family(name: str | torch.nn.Module) -> Family:
    """The ``Family`` of a family name or of a model (its ``family`` attribute)."""
    key = name if isinstance(name, str) else getattr(name, "family", None)
    if key not in FAMILIES:
        raise ValueError(f"unknown model family {key!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[key]


def frozen_part(model: torch.nn.Module) -> torch.nn.Module | None:
    """The model's frozen pre-processing module (``Family.frozen_part``), or None."""
    name = family(model).frozen_part
    return getattr(model, name) if name else None


def build_model(family_name: str, size: str, **overrides) -> torch.nn.Module:
    """A freshly initialised model of ``family_name`` at ``size`` (e.g. ``"mae", "tiny"``)."""
    return family(family_name).build(size, **overrides)


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


__all__ = ["MAE", "MAGE", "Palette", "AutoEncoder", "DomainClassifier", "FAMILIES", "Family",
           "build_model", "family", "frozen_part", "input_size", "model_for"]
