"""Throughput benchmark: l2l's loops against bare PyTorch loops, and images/s per family.

    python -m l2l.bench --loop [--scale small] [--families mae ...] [--steps 40]

For each family, on the same model, data and seed:

* ``train``: ``l2l.train.train_generator`` against a bare loop (index draw, ``training_loss``,
  ``backward``, AdamW step; no schedule, logging, finiteness check or DDP wrapper);
* ``unlearn``: ``unlearn(original, "li2024")`` against a bare loop over the same batches and
  objective (``Batches.next`` + the Li et al. objective + backward + clipping + AdamW step);
* ``complete`` and ``extract``: images/s of ``evaluation.complete`` on the test images and of the
  scale's feature extractor.

Writes ``results/<scale>/bench_loop.csv`` (+ sidecar with CPU count and threads): family, stage,
images_per_s for l2l and bare, and their ratio (goal: l2l >= 90 % of bare). Both loops get an
untimed 3-step warm-up first. Timings depend on the machine and on what else runs; nothing here
is asserted by the unit tests.
"""

from __future__ import annotations

import copy
import os
import time
from typing import Any

import pandas as pd
import torch

from l2l.config import FAMILIES, RunConfig, for_family, replace
from l2l.data import load_data, make_mask, take
from l2l.evaluation import complete
from l2l.models import frozen_part, model_for
from l2l.train import adamw, family_loss_kwargs, released_no_decay, train_generator


def _bare_train(model: torch.nn.Module, images: Any, cfg: RunConfig) -> float:
    t = cfg.train
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = adamw(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, betas=t.betas,
                exempt=released_no_decay(model))
    model.train()
    start = time.perf_counter()
    for _ in range(t.steps):
        x = take(images, torch.randint(len(images), (t.batch_size,), generator=gen))
        kw = family_loss_kwargs(model, cfg, gen)
        loss = model.training_loss(x, generator=gen, **kw)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def _bare_unlearn(original: torch.nn.Module, forget: Any, retain: Any, cfg: RunConfig) -> float:
    from l2l.unlearn.methods import OBJECTIVES, Batches, _adamw, _setup, total_loss

    fn, which, _ = OBJECTIVES["li2024"]
    student, params, teacher, gen, ops = _setup(original, cfg, which)
    batches = Batches(ops, student, forget, retain, cfg, gen)
    opt = _adamw(cfg, student)([p for p in params if p.requires_grad], cfg.unlearn.lr)
    student.train()
    start = time.perf_counter()
    for _ in range(cfg.unlearn.steps):
        x, n, step = batches.next()
        loss = total_loss("li2024", fn(ops, student, teacher, x, n, step, gen), cfg.unlearn.alpha)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.unlearn.grad_clip)
        opt.step()
    return time.perf_counter() - start


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_family(cfg: RunConfig, steps: int) -> list[dict[str, Any]]:
    """The rows of one family (``cfg`` already switched to it)."""
    from l2l.experiments.store import feature_extractor
    from l2l.unlearn import unlearn

    cfg = replace(cfg, train__steps=steps, unlearn__steps=steps)
    images, split = load_data(cfg)
    torch.manual_seed(cfg.seed)
    model = model_for(cfg)
    if (part := frozen_part(model)) is not None:  # a fitted tokenizer is not needed for timing
        part.requires_grad_(False)
    twin = copy.deepcopy(model)
    b, ub = cfg.train.batch_size, 2 * cfg.unlearn.batch_size
    warm = replace(cfg, train__steps=3)  # untimed: first-call allocations favour whoever is second
    _bare_train(copy.deepcopy(model), split.retain, warm)
    train_generator(copy.deepcopy(model), split.retain, warm, progress=False)
    l2l_train = _timed(lambda: train_generator(model, split.retain, cfg, progress=False))
    bare_train = _bare_train(twin, split.retain, cfg)
    model.eval()
    l2l_unlearn = _timed(lambda: unlearn(model, "li2024", forget=split.forget,
                                         retain=split.retain, cfg=cfg, progress=False))
    bare_unlearn = _bare_unlearn(model, split.forget, split.retain, cfg)
    test = split.retain_test
    mask = make_mask(cfg.eval.hole, cfg.data.image_size)
    out: list[torch.Tensor] = []
    t_complete = _timed(lambda: out.append(complete(model, test, mask, cfg)))
    ext = feature_extractor(cfg, images)
    t_extract = _timed(lambda: ext.features(out[0]))
    n = len(test)
    rows = [("train", steps * b / l2l_train, steps * b / bare_train),
            ("unlearn", steps * ub / l2l_unlearn, steps * ub / bare_unlearn),
            ("complete", n / t_complete, float("nan")), ("extract", n / t_extract, float("nan"))]
    return [{"family": cfg.model.family, "stage": stage, "images_per_s": a, "bare_images_per_s": c,
             "ratio_to_bare": a / c, "steps": steps if stage in ("train", "unlearn") else n}
            for stage, a, c in rows]


def run_loop_bench(cfg: RunConfig, *, families: tuple[str, ...] = FAMILIES,
                   steps: int = 40) -> tuple[pd.DataFrame, dict[str, Any]]:
    from l2l.experiments.store import feature_extractor

    rows = [r for f in families for r in bench_family(for_family(cfg, f), steps)]
    ext = feature_extractor(for_family(cfg, families[-1])).provenance()
    prov = {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "steps": steps, **ext, "n_images": int(rows[-1]["steps"]), "seed": cfg.seed,
            "bare_loop": "index draw + training_loss / Li et al. objective + backward + "
                         "(clip) + AdamW step; no schedule, logging, checks or DDP wrapper"}
    return pd.DataFrame(rows), prov
