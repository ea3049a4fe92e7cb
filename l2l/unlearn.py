"""Unlearning methods behind one call: ``unlearn(original, method, forget=, retain=, cfg=)``.

This file holds the shared loop and Li et al. (ICLR 2024, Eq. 10). The original model is never
modified: the student and the frozen teacher are deep copies made after the original's weights
are loaded (spec paper1 Sec. 3.5).
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from l2l.config import RunConfig, resolve_device
from l2l.data import make_mask, take
from l2l.losses import li2024_loss, noise_like
from l2l.train import adamw, check_finite, lr_at

METHODS = ("li2024",)
HISTORY_COLUMNS = ["step", "loss", "loss_retain", "loss_forget", "lr", "time_s"]


def freeze_all_but_encoder(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Set ``requires_grad`` on the encoder only; return the encoder parameters."""
    for p in model.parameters():
        p.requires_grad_(False)
    params = list(model.encoder_parameters())
    for p in params:
        p.requires_grad_(True)
    return params


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy in eval mode with no trainable parameter (the teacher E_theta0)."""
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def noise_image(model: torch.nn.Module, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The forget target's input: a Gaussian image with the batch's scalar statistics.

    MAE: drawn in the model's normalised input space and mapped back to [0, 1] without
    clamping (spec paper1 Sec. 2.3). Families without ``normalize`` draw in [0, 1] and clamp
    (as MAGE does).
    """
    if hasattr(model, "normalize"):
        return model.denormalize(noise_like(model.normalize(x), generator=gen))
    return noise_like(x, generator=gen).clamp(0, 1)


def unlearning_mask(model: torch.nn.Module, cfg: RunConfig, batch: int, size: int,
                    gen: torch.Generator, device: str) -> torch.Tensor:
    """T during unlearning, shared by every pass of a step (spec Sec. 2.3, 5.3)."""
    if cfg.unlearn.mask == "centre":
        return make_mask(cfg.eval.hole, size).expand(batch, 1, size, size).to(device)
    return model.random_patch_mask(batch, cfg.unlearn.mask_ratio, generator=gen).to(device)


def unlearn(original: torch.nn.Module, method: str, *, forget: Any, retain: Any, cfg: RunConfig,
            progress: bool = True) -> tuple[torch.nn.Module, pd.DataFrame]:
    """Unlearn ``forget`` from ``original`` while keeping ``retain``.

    Args:
        original: a trained family model; left untouched.
        method: one of ``METHODS``.
        forget: forget images, uint8/float [N, 3, S, S] tensor or indexable data set.
        retain: retain images (or a proxy retain set), same format.
        cfg: ``cfg.unlearn`` holds alpha, lr, steps, batch size per subset, mask, clipping.

    Returns:
        (unlearned model in eval mode, history DataFrame with ``HISTORY_COLUMNS``).
    """
    if method not in METHODS:
        raise ValueError(f"unknown unlearning method {method!r}; choose one of {', '.join(METHODS)}")
    for name, data in (("forget", forget), ("retain", retain)):
        if len(data) == 0:
            raise ValueError(f"the {name} set is empty")
    return _li2024(original, forget=forget, retain=retain, cfg=cfg, progress=progress)


def _li2024(original: torch.nn.Module, *, forget: Any, retain: Any, cfg: RunConfig,
            progress: bool) -> tuple[torch.nn.Module, pd.DataFrame]:
    """Li et al. Eq. 10: encoder trained, decoder frozen; retain embedding kept, forget embedding
    matched to the original encoder's embedding of a noise image under the same mask."""
    u, device = cfg.unlearn, resolve_device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed + 1000)
    teacher = frozen_copy(original).to(device)
    student = copy.deepcopy(original).to(device).train()
    opt = adamw(freeze_all_but_encoder(student), lr=u.lr, weight_decay=u.weight_decay)
    rows, start = [], time.perf_counter()
    for step in tqdm(range(u.steps), desc="li2024", disable=not progress, mininterval=5):
        lr = lr_at(step, u.steps, u.lr, u.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        xf = take(forget, torch.randint(len(forget), (u.batch_size,), generator=gen)).to(device)
        xr = take(retain, torch.randint(len(retain), (u.batch_size,), generator=gen)).to(device)
        x = torch.cat([xr, xf])
        mask = unlearning_mask(student, cfg, len(x), x.shape[-1], gen, device)
        noise = noise_image(student, x, gen)[len(xr):]
        z = student.encode(x, mask)
        with torch.no_grad():
            z0 = teacher.encode(xr, mask[: len(xr)])
            zn = teacher.encode(noise, mask[len(xr):])
        loss, parts = li2024_loss(z[: len(xr)], z0, z[len(xr):], zn, u.alpha)
        check_finite(loss, step, "li2024")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in student.parameters() if p.requires_grad], u.grad_clip)
        opt.step()
        if step % u.log_every == 0 or step == u.steps - 1:
            rows.append({"step": step, "loss": loss.item(), **parts, "lr": lr,
                         "time_s": time.perf_counter() - start})
    student.eval()
    for p in student.parameters():
        p.requires_grad_(True)
    return student, pd.DataFrame(rows, columns=HISTORY_COLUMNS)
