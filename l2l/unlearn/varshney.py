"""Varshney & Torra (2025): decoupling by gradient ascent, then knowledge retention.

No code was released; this is a re-implementation from the abstract-level description with
every open choice an ``UnlearnConfig`` field (README "Unlearning methods"; defaults are l2l's):

* **Stage 1 (decoupling).** Plain SGD *ascent* on the family's task loss on forget batches
  (``ga_batch_size``), step ``ga_lr``, global-norm clip ``ga_clip``, updating ``ga_params``
  ("all" = encoder + decoder, the paper's argmax over (gamma, phi); or "encoder"). Every
  ``ga_check_every`` steps the forget distance

      d(h) = mean over P_f of the hole MSE between h0(tau(x)) and h(tau(x)),  [0, 1] pixels

  is measured on a fixed probe P_f (the first ``probe_size`` forget images, the test-time hole
  ``eval.hole``, one fixed sampler seed). Stage 1 stops at the first check with d >= lambda, or
  after ``ga_max_steps`` (the history then says the threshold was not reached).
* **lambda.** ``lam`` when > 0 (e.g. the original-vs-retrain distance on the same probe, which
  the run store computes when ``lam_rule = "retrain"``); otherwise kappa * e0 with e0 the
  original's hole MSE against the ground truth on ``probe_size`` retain images (``lam_rule =
  "kappa_e0"``: no retrained model needed, the paper-scale default).
* **Stage 2 (retention).** Adam (lr ``ft_lr``) on the task loss on retain batches for
  ``ft_steps`` steps (-1: ``steps``, Li et al.'s budget; 0: none, = ``varshney2025-stage1``),
  every parameter; d is monitored.
  ``ft_hinge`` > 0 adds the keep-OOD option: ft_hinge * max(0, L_f - task loss on a forget
  batch), with L_f the forget probe's task loss when stage 1 stopped.
* **(epsilon, delta) option.** ``dp_sigma`` > 0 adds N(0, sigma^2) to every trained parameter at
  the end (the Gaussian mechanism; sigma = Delta sqrt(2 ln(1.25 / delta)) / epsilon for an
  *assumed* sensitivity Delta; l2l never reports an (epsilon, delta) as the paper's).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from l2l import dist
from l2l.config import RunConfig, resolve_device, unlearn_seed
from l2l.images import make_mask, take_spread
from l2l.metrics import hole_mse
from l2l.unlearn.loop import draw_batch, release, run, trainable
from l2l.unlearn.methods import _setup
from l2l.unlearn.ops import FamilyOps, take

PROBE_SEED = 4242  # the sampler seed of every probe completion (diffusion / MAGE sampling)


@torch.no_grad()
def completions(model: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    was = model.training
    out = model.eval().complete(x, mask, generator=torch.Generator().manual_seed(PROBE_SEED))
    model.train(was)
    return out


class Probe:
    """P_f with the original's completions, so that d(h) costs one completion pass."""

    def __init__(self, original: torch.nn.Module, forget: Any, cfg: RunConfig) -> None:
        device = resolve_device(cfg.device)
        self.x = take_spread(forget, cfg.unlearn.probe_size).to(device)  # every forget class
        self.mask = make_mask(cfg.eval.hole, self.x.shape[-1]).to(device)
        self.ref = completions(original, self.x, self.mask)

    def distance(self, model: torch.nn.Module) -> float:
        return hole_mse(completions(model, self.x, self.mask), self.ref, self.mask).mean().item()


def threshold(original: torch.nn.Module, retain: Any, cfg: RunConfig) -> tuple[float, str]:
    """lambda and how it was set."""
    u = cfg.unlearn
    if u.lam > 0:
        return u.lam, "given"
    device = resolve_device(cfg.device)
    x = take_spread(retain, u.probe_size).to(device)
    mask = make_mask(cfg.eval.hole, x.shape[-1]).to(device)
    e0 = hole_mse(completions(original, x, mask), x, mask).mean().item()
    return u.kappa * e0, f"kappa*e0 (kappa={u.kappa}, e0={e0:.5f})"


def _sharded(ops: FamilyOps, student: torch.nn.Module, data: Any, n: int, gen: torch.Generator,
             device: str):
    """A global batch of ``n`` from ``data`` with its draw of T, this rank's shard."""
    x = draw_batch(data, n, gen, device)
    step = ops.draw(student, x, gen)
    rows = dist.shard(n)
    return x[rows], take(step, rows)


def task_steps(ops: FamilyOps, student: torch.nn.Module, data: Any, n: int,
               gen: torch.Generator, device: str):
    """``step_loss`` of the task loss on global batches of ``n`` from ``data`` (rank's shard)."""
    def step_loss(call, _):
        x, step = _sharded(ops, student, data, n, gen, device)
        total = call(lambda model: ops.task_loss(model, x, step))
        return total, {}
    return step_loss


def decouple(original, forget, retain, cfg: RunConfig, progress: bool):
    """Stage 1 alone: SGD ascent until d >= lambda (or ``ga_max_steps``). Returns the state
    stage 2 continues from: (student, probe, lambda, how it was set, generator, ops, rows, t0)."""
    u, device = cfg.unlearn, resolve_device(cfg.device)
    student, params, _, gen, ops = _setup(original, cfg, u.ga_params)
    probe = Probe(original, forget, cfg)
    lam, how = threshold(original, retain, cfg)
    t0 = time.perf_counter()

    def check(step: int) -> dict[str, float] | None:
        if (step + 1) % u.ga_check_every and step != u.ga_max_steps - 1:
            return None
        d = probe.distance(student)
        return {"forget_distance": d, "lam": lam, "stop": d >= lam}

    rows = run("decouple", student, params,
               task_steps(ops, student, forget, u.ga_batch_size, gen, device),
               steps=u.ga_max_steps, lr=u.ga_lr, warmup=0.0, optimizer=_sgd,
               grad_clip=u.ga_clip, log_every=u.log_every, progress=progress, ascent=True,
               stop=check, t0=t0, precision=cfg.precision)
    return student, probe, lam, how, gen, ops, rows, t0


def retention_steps(cfg: RunConfig) -> int:
    """Stage 2 steps: ``ft_steps``, or ``steps`` (Li et al.'s budget) when it is -1."""
    return cfg.unlearn.steps if cfg.unlearn.ft_steps == -1 else cfg.unlearn.ft_steps


def varshney2025(original, forget, retain, cfg: RunConfig, progress: bool, *,
                 stage2: bool = True):
    """Stage 1 until d >= lambda (or ``ga_max_steps``), then stage 2 (``retention_steps``;
    skipped with ``stage2=False`` or ``ft_steps = 0``), then the optional ``dp_sigma`` noise;
    see the module docstring. History rows carry ``stage`` ("decouple" / "retain"),
    ``forget_distance`` and ``lam``."""
    u, device = cfg.unlearn, resolve_device(cfg.device)
    student, probe, lam, how, gen, ops, rows, t0 = decouple(original, forget, retain, cfg,
                                                            progress)
    ft_steps = retention_steps(cfg) if stage2 else 0
    if ft_steps > 0:
        def monitor(step: int) -> dict[str, float] | None:
            if (step + 1) % u.ga_check_every and step != ft_steps - 1:
                return None
            return {"forget_distance": probe.distance(student), "lam": lam}

        retain_steps = task_steps(ops, student, retain, u.batch_size, gen, device)
        if u.ft_hinge > 0:
            floor = _probe_task_loss(ops, student, probe.x)
            retain_steps = _hinged(ops, student, forget, retain, u, floor, gen, device)
        run("retain", student, trainable(student, "all"), retain_steps, steps=ft_steps,
            lr=u.ft_lr, warmup=0.0, optimizer=_adam, grad_clip=0.0, log_every=u.log_every,
            progress=progress, stop=monitor, rows=rows, t0=t0, precision=cfg.precision)
    if u.dp_sigma > 0:
        dp_noise(student, u.dp_sigma, cfg)
    for row in rows:
        row["lam"], row["lambda_source"] = lam, how
    return release(student), rows


def varshney2025_stage1(original, forget, retain, cfg: RunConfig, progress: bool):
    """Stage 1 alone (pure ascent to lambda; the AutoEncoder study's row), then the optional
    ``dp_sigma`` noise: ``varshney2025`` without retention, whatever ``ft_steps`` says."""
    return varshney2025(original, forget, retain, cfg, progress, stage2=False)


@torch.no_grad()
def _probe_task_loss(ops: FamilyOps, model: torch.nn.Module, x: torch.Tensor) -> float:
    """The task loss on the forget probe under one fixed draw of T (the hinge's floor)."""
    was = model.training
    model.eval()
    step = ops.draw(model, x, torch.Generator().manual_seed(PROBE_SEED))
    loss = ops.task_loss(model, x, step).item()
    model.train(was)
    return loss


def _hinged(ops: FamilyOps, student: torch.nn.Module, forget: Any, retain: Any, u: Any,
            floor: float, gen: torch.Generator, device: str):
    """Stage 2 with the keep-OOD option (l2l's option, in loss form): retain task
    loss + ``ft_hinge`` * max(0, floor - task loss on a forget batch), where floor is the
    forget probe's task loss when stage 1 stopped."""
    def step_loss(call, _):
        xr, sr = _sharded(ops, student, retain, u.batch_size, gen, device)
        xf, sf = _sharded(ops, student, forget, u.batch_size, gen, device)
        terms = {}

        def loss(model):
            terms["loss_retain"] = ops.task_loss(model, xr, sr)
            terms["loss_forget"] = torch.relu(floor - ops.task_loss(model, xf, sf))
            return terms["loss_retain"] + u.ft_hinge * terms["loss_forget"]

        total = call(loss)
        return total, {k: v.item() for k, v in terms.items()}
    return step_loss


def _sgd(params, lr):
    return torch.optim.SGD(params, lr=lr)  # plain ascent (l2l's choice)


def _adam(params, lr):
    return torch.optim.Adam(params, lr=lr)


def dp_noise(model: torch.nn.Module, sigma: float, cfg: RunConfig) -> None:
    """The (epsilon, delta) option: N(0, sigma^2) on every trainable parameter, drawn from the
    run's own generator (``unlearn_seed(cfg) + 77``), so a sweep over sigma can perturb one
    stored ``dp_sigma = 0`` model and get exactly the method's result."""
    perturb(model, sigma, torch.Generator().manual_seed(unlearn_seed(cfg) + 77))


@torch.no_grad()
def perturb(model: torch.nn.Module, sigma: float, gen: torch.Generator) -> None:
    """Add N(0, sigma^2) to every trainable parameter (the frozen MAGE tokenizer excluded)."""
    for p in model.parameters():
        if p.requires_grad:
            p.add_(torch.randn(p.shape, generator=gen).to(p) * sigma)
