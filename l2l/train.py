"""Training loops for the original / retrain generators and the domain feature network.

Every loop is seeded through an explicit ``torch.Generator``, returns a history DataFrame (one
row per logged step) and stops with ``FloatingPointError`` on a non-finite loss.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from l2l import dist
from l2l.config import RunConfig, resolve_device
from l2l.images import take
from l2l.models import family
from l2l.profile import timed
from l2l.runtime import seeded_run
from l2l.schedule import lr_at


def adamw(params: Iterable[torch.nn.Parameter], *, lr: float, weight_decay: float,
          betas: tuple[float, float] = (0.9, 0.95),
          exempt: frozenset[int] = frozenset()) -> torch.optim.AdamW:
    """AdamW with no weight decay on biases, norms and other 1-D parameters (as MAE/MAGE), nor
    on the parameters whose ``id`` is in ``exempt`` (``released_no_decay``)."""
    params = [p for p in params if p.requires_grad]
    decay = [p for p in params if p.ndim > 1 and id(p) not in exempt]
    no_decay = [p for p in params if p.ndim <= 1 or id(p) in exempt]
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def released_no_decay(model: torch.nn.Module) -> frozenset[int]:
    """Parameters the released optimiser groups exempt from weight decay beyond the 1-D ones:
    every ``*.bias`` (timm's ``add_weight_decay``, e.g. MAGE's ``mlm_layer.bias`` of shape
    [1, 1, V]) when the model's spec asks for it (``MAGESpec.bias_no_decay``: paper size)."""
    if not getattr(getattr(model, "spec", None), "bias_no_decay", False):
        return frozenset()
    return frozenset(id(p) for name, p in model.named_parameters() if name.endswith(".bias"))


def check_finite(loss: torch.Tensor, step: int, what: str) -> None:
    if not torch.isfinite(loss):
        raise FloatingPointError(
            f"{what}: loss is {loss.item()} at step {step}; lower the learning rate or check the data"
        )


def family_loss_kwargs(model: torch.nn.Module, cfg: RunConfig, gen: torch.Generator) -> dict[str, Any]:
    """Per-step keyword arguments of ``model.training_loss`` (``Family.train_kwargs``)."""
    return family(model).train_kwargs(cfg, gen)


def train_generator(model: torch.nn.Module, images: Any, cfg: RunConfig, *,
                    desc: str = "train", progress: bool = True) -> pd.DataFrame:
    """Train ``model`` in place on ``images`` with its own ``training_loss``.

    Args:
        model: a family model (``training_loss(x, *, generator, **kw)``).
        images: uint8 [N, 3, S, S] tensor or indexable data set of such images.
        cfg: uses ``cfg.train`` (steps, batch, AdamW, warm-up + cosine) and ``cfg.seed``.

    Under torchrun each process takes its shard of every global batch and DDP averages the
    gradients (``l2l.dist``); the per-sample masks of ``training_loss`` are drawn per process.

    Every random draw (batches, masks, dropout) comes from ``cfg.seed`` (``runtime.seeded_run``).

    Returns:
        History with columns step, loss, lr, time_s.
    """
    with seeded_run(cfg.seed), timed("train"):
        return _train_generator(model, images, cfg, desc=desc, progress=progress)


def _train_generator(model: torch.nn.Module, images: Any, cfg: RunConfig, *, desc: str,
                     progress: bool) -> pd.DataFrame:
    device = resolve_device(cfg.device)
    t = cfg.train
    if t.steps < 1:
        raise ValueError(f"train.steps must be >= 1 to train a generator, got {t.steps}")
    gen = torch.Generator().manual_seed(cfg.seed)
    model.to(device).train()
    opt = adamw(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, betas=t.betas,
                exempt=released_no_decay(model))
    call = dist.objective(model, cfg.precision)
    rows, start = [], time.perf_counter()
    for step in tqdm(range(t.steps), desc=desc, disable=not progress, mininterval=5):
        lr = lr_at(step, t.steps, t.lr, t.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        idx = torch.randint(len(images), (t.batch_size,), generator=gen)[dist.shard(t.batch_size)]
        x = take(images, idx).to(device)
        kw = family_loss_kwargs(model, cfg, gen)
        loss = call(lambda m: m.training_loss(x, generator=gen, **kw))
        check_finite(loss, step, desc)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == t.steps - 1:
            rows.append({"step": step, "loss": loss.item(), "lr": lr,
                         "time_s": time.perf_counter() - start})
    model.eval()
    return pd.DataFrame(rows, columns=["step", "loss", "lr", "time_s"])


def train_classifier(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: RunConfig, *,
                     progress: bool = True) -> pd.DataFrame:
    """Train the domain feature network with cross-entropy (Adam, cosine schedule).

    Args:
        net: ``DomainClassifier``. x: uint8 [N, 3, S, S]. y: int64 [N] class ids.
    """
    with seeded_run(cfg.seed + 7), timed("train"):
        return _train_classifier(net, x, y, cfg, progress=progress)


def _train_classifier(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: RunConfig, *,
                      progress: bool) -> pd.DataFrame:
    device = resolve_device(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed + 7)
    steps, lr0 = cfg.train.classifier_steps, cfg.train.classifier_lr
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr0)
    rows, start = [], time.perf_counter()
    for step in tqdm(range(steps), desc="classifier", disable=not progress, mininterval=5):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr0, 0.05)
        idx = torch.randint(len(x), (128,), generator=gen)
        xb = take(x, idx).to(device)
        if torch.rand(1, generator=gen).item() < 0.5:
            xb = xb.flip(-1)
        loss = F.cross_entropy(net(xb), y[idx].to(device))
        check_finite(loss, step, "classifier")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == steps - 1:
            rows.append({"step": step, "loss": loss.item(), "time_s": time.perf_counter() - start})
    net.eval()
    return pd.DataFrame(rows, columns=["step", "loss", "time_s"])
