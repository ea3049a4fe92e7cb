"""The optimisation loop every unlearning method shares, and its batches.

One step: draw a forget batch and a retain batch (``batch_size`` each, indices from the run's
generator), let the method compute its loss, clip the gradient norm, step. Under torchrun each
rank keeps its shard of the same global batch (``l2l.dist``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from l2l import dist
from l2l.images import take as take_rows
from l2l.models import frozen_part
from l2l.schedule import lr_at
from l2l.train import check_finite

HISTORY_COLUMNS = ["step", "stage", "loss", "loss_retain", "loss_forget", "forget_distance",
                   "lam", "lr", "time_s"]


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy in eval mode with no trainable parameter (the teacher E_theta0)."""
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def trainable(model: torch.nn.Module, which: str) -> list[torch.nn.Parameter]:
    """Set ``requires_grad`` on ``which`` ("encoder" or "all") parameters only; return them.

    The VQ tokenizer of MAGE stays frozen under "all" (it is never trained by unlearning).
    """
    for p in model.parameters():
        p.requires_grad_(False)
    if which == "encoder":
        params = list(model.encoder_parameters())
    elif which == "all":
        params = list(model.encoder_parameters()) + list(model.decoder_parameters())
    else:
        raise ValueError(f"trainable parameters must be 'encoder' or 'all', got {which!r}")
    for p in params:
        p.requires_grad_(True)
    return params


def release(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode, every parameter trainable again (the state a fresh model is in)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    if (part := frozen_part(model)) is not None:
        part.requires_grad_(False)
    return model


def draw_batch(data: Any, n: int, gen: torch.Generator, device: str) -> torch.Tensor:
    """``n`` random rows of ``data`` as float [n, 3, S, S] in [0, 1] (the global batch)."""
    return take_rows(data, torch.randint(len(data), (n,), generator=gen)).to(device)


def run(name: str, model: torch.nn.Module, params: Iterable[torch.nn.Parameter],
        step_loss: Callable[[Any, int], tuple[torch.Tensor, dict[str, float]]], *,
        steps: int, lr: float, warmup: float, optimizer: Callable[..., torch.optim.Optimizer],
        grad_clip: float, log_every: int, progress: bool, ascent: bool = False,
        stop: Callable[[int], dict[str, float] | None] | None = None,
        rows: list[dict[str, Any]] | None = None, t0: float | None = None,
        precision: str = "fp32") -> list[dict[str, Any]]:
    """Optimise ``params`` of ``model`` for ``steps`` steps.

    Args:
        step_loss: ``(call, step) -> (loss, parts)``; ``call(fn, *args)`` runs ``fn(model, *args)``
            (through DDP under torchrun) and must be used for every pass that needs gradients.
        ascent: maximise the loss (gradient ascent) instead of minimising it.
        stop: called every step after the update; a returned dict holds extra history fields
            and ends the loop when its "stop" entry is true.
        rows / t0: history rows to append to and the start time of ``time_s`` (a method's
            stages share one clock).
        precision: "bf16" runs every ``call`` under bfloat16 autocast (``RunConfig.precision``).

    Returns:
        History rows (``HISTORY_COLUMNS``; missing fields are filled later).
    """
    params = [p for p in params if p.requires_grad]
    opt = optimizer(params, lr)
    call = dist.objective(model, precision)
    rows = [] if rows is None else rows
    start = time.perf_counter() if t0 is None else t0
    model.train()
    for step in tqdm(range(steps), desc=name, disable=not progress, mininterval=5):
        cur = lr_at(step, steps, lr, warmup)
        for group in opt.param_groups:
            group["lr"] = cur
        loss, parts = step_loss(call, step)
        check_finite(loss, step, name)
        opt.zero_grad(set_to_none=True)
        (-loss if ascent else loss).backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        extra = stop(step) if stop is not None else None
        if step % log_every == 0 or step == steps - 1 or extra is not None:
            logged = dist.mean_over_ranks({"loss": loss.item(), **parts})
            rows.append({"step": step, "stage": name, **logged, "lr": cur,
                         "time_s": time.perf_counter() - start, **(extra or {})})
        if extra is not None and extra.get("stop"):
            break
    return rows


def history(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col in HISTORY_COLUMNS:
        if col not in df:
            df[col] = float("nan")
    return df[HISTORY_COLUMNS].astype({"step": "int64"}) if len(df) else df[HISTORY_COLUMNS]
