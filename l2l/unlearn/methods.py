"""Li et al. (Eq. 10), their four baselines and the references, written once for every family.

Each method is ``fn(original, forget, retain, cfg, progress) -> (model, history rows)``; the
family-specific meaning of "noise input", "output" and "task loss" comes from
``l2l.unlearn.ops``. Every step sees ``unlearn.batch_size`` retain and as many forget images
(balanced halves: l2l's choice, the released code draws a random 1:1 mix) under one draw of T;
each term uses its own subset only (the released MAGE baselines, i2i_mage
``engine_baseline.compute_loss``, apply the forget term to retain samples: not copied;
``tests/test_unlearn_methods.py`` proves it).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from l2l import dist
from l2l.config import RunConfig, resolve_device, unlearn_seed
from l2l.losses import Embedding, embedding_mse
from l2l.models import frozen_part
from l2l.train import adamw, released_no_decay, train_generator
from l2l.unlearn.loop import draw_batch, frozen_copy, release, run, trainable
from l2l.unlearn.ops import FamilyOps, Step, ops_for, take

def _split(z: Embedding, n: int) -> tuple[Embedding, Embedding]:
    """First ``n`` rows and the rest of an embedding (one tensor or a list of maps)."""
    if isinstance(z, torch.Tensor):
        return z[:n], z[n:]
    return [m[:n] for m in z], [m[n:] for m in z]


def _random_like(z: Embedding, gen: torch.Generator) -> Embedding:
    """N(mean, std^2) with the scalar statistics of each map (Random Encoder's forget target)."""
    if not isinstance(z, torch.Tensor):
        return [_random_like(m, gen) for m in z]
    eps = torch.randn(z.shape, generator=gen).to(z)
    return eps * z.std() + z.mean()


class Batches:
    """The step's data: global forget + retain batches and one draw of T, sharded per rank.

    ``x`` = [retain rows; forget rows] of this rank, ``n`` = retain rows, ``step`` the matching
    randomness. Draw order (forget indices, retain indices, then the family's T and noise)
    is fixed so that runs are reproducible for a seed.
    """

    def __init__(self, ops: FamilyOps, model: torch.nn.Module, forget: Any, retain: Any,
                 cfg: RunConfig, gen: torch.Generator) -> None:
        self.ops, self.model, self.forget, self.retain = ops, model, forget, retain
        self.b, self.gen, self.device = cfg.unlearn.batch_size, gen, resolve_device(cfg.device)

    def next(self) -> tuple[torch.Tensor, int, Step]:
        xf = draw_batch(self.forget, self.b, self.gen, self.device)
        xr = draw_batch(self.retain, self.b, self.gen, self.device)
        step = self.ops.draw(self.model, torch.cat([xr, xf]), self.gen)
        rows = torch.arange(self.b)[dist.shard(self.b)]
        idx = torch.cat([rows, self.b + rows]).to(self.device)
        return torch.cat([xr, xf])[idx], len(rows), take(step, idx)


def _setup(original: torch.nn.Module, cfg: RunConfig, which: str, seed_offset: int = 1000):
    device = resolve_device(cfg.device)
    student = copy.deepcopy(original).to(device)
    params = trainable(student, which)
    gen = torch.Generator().manual_seed(unlearn_seed(cfg) + seed_offset)
    teacher, ops = frozen_copy(original).to(device), ops_for(original, cfg)
    ops.prepare(student, teacher)  # e.g. Palette's released unlearning dropout
    return student, params, teacher, gen, ops


def _adamw(cfg: RunConfig, model: torch.nn.Module):
    exempt = released_no_decay(model)
    return lambda params, lr: adamw(params, lr=lr, weight_decay=cfg.unlearn.weight_decay,
                                    exempt=exempt)


# ----------------------------------------------------------------------------- objectives
# ``objective(ops, model, teacher, x, n, step, gen) -> {"loss_retain", "loss_forget"}``: x holds
# n retain rows then the forget rows, ``step`` their T; teacher targets under no_grad. The
# method's loss is loss_retain + SIGN * alpha * loss_forget.
Terms = dict[str, torch.Tensor]


def _halves(step: Step, n: int) -> tuple[Step, Step]:
    return take(step, slice(0, n)), take(step, slice(n, None))


def li2024_objective(ops, model, teacher, x, n, step, gen) -> Terms:
    """Li et al. Eq. 10 (MSE): retain embedding kept, forget embedding -> E0(noise input)."""
    sr, sf = _halves(step, n)
    with torch.no_grad():
        z0, zn = ops.embed(teacher, x[:n], sr), ops.embed_noise(teacher, x[n:], sf)
    zr, zf = _split(ops.embed(model, x, step), n)  # one student pass over both halves
    return {"loss_retain": embedding_mse(zr, z0), "loss_forget": embedding_mse(zf, zn)}


def task_objective(ops, model, teacher, x, n, step, gen, *, noisy: bool = False) -> Terms:
    """The family's task loss on retain and on forget (Max Loss ascends the forget term)."""
    sr, sf = _halves(step, n)
    return {"loss_retain": ops.task_loss(model, x[:n], sr),
            "loss_forget": ops.task_loss(model, x[n:], sf, noisy=noisy)}


def noisy_label_objective(ops, model, teacher, x, n, step, gen) -> Terms:
    """Task loss on retain; on forget with the family's noise target as the ground truth."""
    return task_objective(ops, model, teacher, x, n, step, gen, noisy=True)


def retain_label_objective(ops, model, teacher, x, n, step, gen) -> Terms:
    """L2 to the original's outputs on retain; forget row i gets retain row i's original
    output as its label (the released code tiles the batch's retain outputs)."""
    sr, sf = _halves(step, n)
    with torch.no_grad():
        target = ops.output(teacher, x[:n], sr)
    return {"loss_retain": torch.mean((ops.output(model, x[:n], sr) - target) ** 2),
            "loss_forget": torch.mean((ops.output(model, x[n:], sf) - target) ** 2)}


def random_encoder_objective(ops, model, teacher, x, n, step, gen) -> Terms:
    """Retain embedding kept; forget embedding -> a fresh Gaussian tensor with the scalar
    statistics (per map) of the teacher's embedding of the whole batch."""
    with torch.no_grad():
        z0 = ops.embed(teacher, x, step)
        z0_r, target_f = _split(z0, n)[0], _split(_random_like(z0, gen), n)[1]
    zr, zf = _split(ops.embed(model, x, step), n)
    return {"loss_retain": embedding_mse(zr, z0_r), "loss_forget": embedding_mse(zf, target_f)}


def finetune_objective(ops, model, teacher, x, n, step, gen) -> Terms:
    """Task loss on retain only (no forget term)."""
    return {"loss_retain": ops.task_loss(model, x[:n], _halves(step, n)[0])}


# name -> (objective, trained parameters, sign of the forget term)
OBJECTIVES = {
    "li2024": (li2024_objective, "encoder", 1.0),
    "max_loss": (task_objective, "all", -1.0),
    "noisy_label": (noisy_label_objective, "all", 1.0),
    "retain_label": (retain_label_objective, "all", 1.0),
    "random_encoder": (random_encoder_objective, "encoder", 1.0),
    "finetune": (finetune_objective, "all", 1.0),
}


def total_loss(name: str, terms: Terms, alpha: float) -> torch.Tensor:
    sign = OBJECTIVES[name][2]
    return terms["loss_retain"] + sign * alpha * terms.get("loss_forget", 0.0)


def by_objective(name: str):
    """The method ``name`` of ``OBJECTIVES``: AdamW on its parameters for ``unlearn.steps``."""
    fn, which, _ = OBJECTIVES[name]

    def method(original, forget, retain, cfg: RunConfig, progress: bool):
        student, params, teacher, gen, ops = _setup(original, cfg, which)
        batches = Batches(ops, student, forget, retain, cfg, gen)

        def step_loss(call, _):
            x, n, step = batches.next()
            terms: Terms = {}

            def loss(model):
                terms.update(fn(ops, model, teacher, x, n, step, gen))
                return total_loss(name, terms, cfg.unlearn.alpha)

            total = call(loss)
            return total, {k: v.item() for k, v in terms.items()}

        u = cfg.unlearn
        rows = run(name, student, params, step_loss, steps=u.steps, lr=u.lr, warmup=u.warmup,
                   optimizer=_adamw(cfg, student), grad_clip=u.grad_clip, log_every=u.log_every,
                   progress=progress, precision=cfg.precision)
        return release(student), rows

    method.__doc__ = fn.__doc__
    return method


# ----------------------------------------------------------------------------- references
def original_model(original, forget, retain, cfg: RunConfig, progress: bool):
    """No change: a copy of the original (the reference row of every table)."""
    return release(copy.deepcopy(original)), []


def retrain(original, forget, retain, cfg: RunConfig, progress: bool):
    """From scratch on retain only with the original's recipe (``cfg.train``), same seed; a
    MAGE tokenizer is shared frozen pre-processing and is copied, not retrained."""
    torch.manual_seed(cfg.seed)
    model = type(original)(original.spec)
    if (part := frozen_part(original)) is not None:
        frozen_part(model).load_state_dict(part.state_dict())
        frozen_part(model).requires_grad_(False)
    hist = train_generator(model, retain, cfg, desc="retrain", progress=progress)
    rows = [{"stage": "retrain", **r} for r in hist.to_dict("records")]
    return release(model), rows
