"""Per-run determinism: a fixed torch thread count and config-seeded randomness.

A run's bytes depend on the CPU kernels torch picks, and those depend on the thread count
(``results/small/portability_probe.csv``: every family changes between 1 and 2 threads). So every
process of l2l computes with the same number of torch threads, ``$L2L_THREADS`` or 1 (one per
process: parallel runs, not parallel kernels; the small models gain little from a second thread),
and every result file records it (``io.versions``).

Randomness that a run does not draw from an explicit ``torch.Generator`` (dropout, above all
MAGE's token-embedding dropout) comes from torch's global generator. ``seeded_run(seed)`` seeds
it from the run's config on entry and restores the caller's state on exit, so a run gives the
same bytes whatever ran before it in the process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

THREADS_ENV = "L2L_THREADS"


def threads() -> int:
    """The torch thread count of every l2l run: ``$L2L_THREADS`` (an integer >= 1) or 1."""
    raw = os.environ.get(THREADS_ENV, "1")
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{THREADS_ENV} must be an integer >= 1, got {raw!r}")
    return n


def fix_threads() -> int:
    """Set torch's intra-op thread count to ``threads()`` (idempotent) and return it."""
    n = threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


@contextmanager
def seeded_run(seed: int) -> Iterator[None]:
    """Run the block with ``fix_threads()`` and torch's global generators (CPU and the current
    CUDA devices) seeded with ``seed``; the caller's generator states come back afterwards."""
    fix_threads()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
