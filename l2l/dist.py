"""Multi-process training under ``torchrun`` with DistributedDataParallel (no own launcher).

``torchrun --nproc_per_node=N -m l2l.cli unlearn ...`` sets ``WORLD_SIZE``/``RANK``;
``init_from_env`` then joins the process group (NCCL on GPU, gloo on CPU). The loops in
``l2l.train`` and ``l2l.unlearn`` draw every *global* batch (indices, masks, noise) from the same
seeded generator on every rank and keep the rank's shard, and gradients are averaged by DDP, so
N processes take the same steps as one process with the whole batch (up to float reduction
order; ``tests/test_dist.py``). Outside torchrun everything is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


def init_from_env() -> None:
    """Join the process group torchrun describes (idempotent; no-op for a single process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend)


def rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    return rank_world()[0] == 0


def shard(n: int) -> slice:
    """This rank's rows of a global batch of ``n`` (``n`` must divide evenly)."""
    rank, world = rank_world()
    if n % world:
        raise ValueError(f"global batch {n} does not split evenly over {world} processes")
    per = n // world
    return slice(rank * per, (rank + 1) * per)


def autocast(precision: str, device: str | torch.device) -> Any:
    """``torch.autocast`` to bfloat16 when ``precision == "bf16"``, else a no-op context."""
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16,
                          enabled=precision == "bf16")


class _Objective(nn.Module):
    """Holds the trained model so that DDP sees its parameters; ``forward(fn, *args)`` returns
    ``fn(model, *args)``, the step's scalar loss (under bf16 autocast with ``precision="bf16"``,
    returned as float32)."""

    def __init__(self, model: nn.Module, precision: str = "fp32") -> None:
        super().__init__()
        self.model, self.precision = model, precision

    def forward(self, fn: Callable[..., torch.Tensor], *args: Any) -> torch.Tensor:
        device = next(self.model.parameters()).device
        with autocast(self.precision, device):
            return fn(self.model, *args).float()


def objective(model: nn.Module, precision: str = "fp32") -> Callable[..., torch.Tensor]:
    """``call(fn, *args) -> loss``: plain call in one process, through DDP under torchrun (built
    after ``requires_grad`` is set: DDP averages the gradients of the trainable parameters)."""
    wrapped = _Objective(model, precision)
    if rank_world()[1] == 1:
        return wrapped
    ids = [torch.cuda.current_device()] if torch.cuda.is_available() else None
    return nn.parallel.DistributedDataParallel(wrapped, device_ids=ids)


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Average logged scalars over the processes (each saw its shard); identity otherwise."""
    if rank_world()[1] == 1 or not values:
        return values
    t = torch.tensor(list(values.values()), dtype=torch.float64)
    if torch.cuda.is_available():
        t = t.cuda()
    dist.all_reduce(t)
    return dict(zip(values, (t / rank_world()[1]).tolist()))


def map_rows(fn: Callable[[Any], Any], rows: Any) -> Any:
    """``fn(rows)`` with the rows split into contiguous blocks over the processes under
    torchrun and the results gathered in order on every rank (generation and feature
    extraction); a plain call otherwise. ``rows`` is anything sliceable with ``len`` (a tensor,
    ``l2l.data.FileImages``); ``fn`` returns a tensor, an array, or a tuple of them (None kept)."""
    rank, world = rank_world()
    if world == 1:
        return fn(rows)
    bounds = torch.linspace(0, len(rows), world + 1).round().long().tolist()
    mine = fn(rows[bounds[rank]:bounds[rank + 1]])
    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, _cpu(mine))
    return _concat(parts)


def _cpu(x: Any) -> Any:
    if isinstance(x, tuple):
        return tuple(_cpu(v) for v in x)
    return x.cpu() if isinstance(x, torch.Tensor) else x


def _concat(parts: list[Any]) -> Any:
    import numpy as np

    first = parts[0]
    if isinstance(first, tuple):
        return tuple(_concat([p[i] for p in parts]) for i in range(len(first)))
    if first is None:
        return None
    return torch.cat(parts) if isinstance(first, torch.Tensor) else np.concatenate(parts)
