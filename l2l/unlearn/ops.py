"""What each family means by the pieces the unlearning methods are built from.

The methods (``l2l.unlearn.methods``) are written once, against ``FamilyOps``; the papers'
per-family differences live here and nowhere else (Li et al.'s released code: i2i_mage
``engine_unlearn.py`` and ``main_baseline.py``, the Palette fork's ``unlearn.py``; the MAE, the
AutoEncoder and Varshney & Torra's task losses are l2l's choices):

==============  =============================  ==============================  ===================
family          train-time T (``draw``)        noise input (Li et al.)         raw output
==============  =============================  ==============================  ===================
mae             random patches at              Gaussian image, batch stats,    predicted patches
                ``unlearn.mask_ratio``         normalised space                (normalised)
vqgan           MAGE token drop / mask         Gaussian image, batch stats,    MLM logits
                                               clamped to [0, 1]
diffusion       Palette hybrid masks, gamma,   noisy-image channels inside     predicted noise
                eps, eps_c                     the hole = pure eps
autoencoder     the model's tau (centre hole)  Gaussian image, clamped         reconstruction
==============  =============================  ==============================  ===================

``unlearn.mask = "centre"`` replaces the train-time T by the test-time hole (``eval.hole``) for
every family. A *step* is a dict of the randomness one optimisation step shares between the
student and teacher passes; ``take(step, rows)`` selects a sub-batch of it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from l2l.config import RunConfig
from l2l.images import make_mask
from l2l.losses import Embedding, noise_like
from l2l.models import family

Step = dict[str, Any]


def noise_image(model: torch.nn.Module, x: torch.Tensor, gen: torch.Generator,
                kind: str = "normal") -> torch.Tensor:
    """The forget target's input, float like ``x`` (``unlearn.noise_type``, the released
    ``--noise_type`` of i2i_mage):

    * ``"normal"``: a Gaussian image with the batch's scalar mean and std. MAE: drawn in the
      model's normalised input space and mapped back to [0, 1] without clamping (l2l's choice);
      families without ``normalize`` draw in [0, 1] and clamp (as MAGE does);
    * ``"uniform"``: U[0, 1) per pixel; ``"constant"``: the batch's mean value everywhere.
    """
    if kind == "uniform":
        return torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    if kind == "constant":
        return torch.full_like(x, float(x.mean()))
    if kind != "normal":
        raise ValueError(f"unknown noise type {kind!r}; choose normal, uniform or constant")
    if hasattr(model, "normalize"):
        return model.denormalize(noise_like(model.normalize(x), generator=gen))
    return noise_like(x, generator=gen).clamp(0, 1)


def take(step: Step, rows: slice) -> Step:
    """The rows of every batched entry of a step (tensors, MAGE token masks); the rest as is."""
    out = {}
    for key, value in step.items():
        if hasattr(value, "take") and not isinstance(value, torch.Tensor):
            out[key] = value.take(rows)
        elif isinstance(value, torch.Tensor) and value.ndim > 0:
            out[key] = value[rows]
        else:
            out[key] = value
    return out


def _mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.mean((a - b) ** 2)


class FamilyOps:
    """Base: pixel-mask families whose encoder sees tau(x) (MAE, AutoEncoder)."""

    def __init__(self, model: torch.nn.Module, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.family = model.family

    def prepare(self, student: torch.nn.Module, teacher: torch.nn.Module) -> None:
        """Adjust the student and the frozen teacher before unlearning (default: nothing)."""

    # ---- randomness of one step -------------------------------------------------------------
    def _mask(self, model: torch.nn.Module, x: torch.Tensor, gen: torch.Generator) -> Any:
        if self.cfg.unlearn.mask == "centre":
            return make_mask(self.cfg.eval.hole, x.shape[-1]).expand(len(x), 1, -1, -1).to(x.device)
        return model.sample_mask(len(x), generator=gen, device=x.device)

    def draw(self, model: torch.nn.Module, x: torch.Tensor, gen: torch.Generator) -> Step:
        """T for the batch, then the noise image (Li et al.) with the batch's statistics."""
        mask = self._mask(model, x, gen)
        return {"mask": mask, "noise_x": noise_image(model, x, gen, self.cfg.unlearn.noise_type)}

    # ---- the pieces ---------------------------------------------------------------------------
    def embed(self, model: torch.nn.Module, x: torch.Tensor, step: Step) -> Embedding:
        return model.encode(x, step["mask"])

    def embed_noise(self, model: torch.nn.Module, x: torch.Tensor, step: Step) -> Embedding:
        """Embedding of the family's noise input under the same T (Li et al.'s forget target)."""
        return model.encode(step["noise_x"], step["mask"])

    def output(self, model: torch.nn.Module, x: torch.Tensor, step: Step) -> torch.Tensor:
        """The decoder's raw output (Retain Label's L2 space)."""
        return model.decode(model.encode(x, step["mask"]), step["mask"])

    def task_loss(self, model: torch.nn.Module, x: torch.Tensor, step: Step, *,
                  noisy: bool = False) -> torch.Tensor:
        """The family's training loss under the step's T; ``noisy``: Noisy Label's target (the
        noise image) replaces the ground truth."""
        target = step["noise_x"] if noisy else x
        return _mse(self.output(model, x, step), target)


class MAEOps(FamilyOps):
    def _mask(self, model: torch.nn.Module, x: torch.Tensor, gen: torch.Generator) -> Any:
        if self.cfg.unlearn.mask == "centre":
            return super()._mask(model, x, gen)
        return model.random_patch_mask(len(x), self.cfg.unlearn.mask_ratio, generator=gen,
                                       device=x.device)

    def output(self, model: torch.nn.Module, x: torch.Tensor, step: Step) -> torch.Tensor:
        patches = model._as_patch_mask(step["mask"])
        return model.forward_decoder(model.forward_encoder(x, patches), patches)

    def task_loss(self, model: torch.nn.Module, x: torch.Tensor, step: Step, *,
                  noisy: bool = False) -> torch.Tensor:
        target = step["noise_x"] if noisy else x
        return model.forward_loss(target, self.output(model, x, step),
                                  model._as_patch_mask(step["mask"]))


class VQGANOps(FamilyOps):
    """MAGE: tokenizer frozen; T is MAGE's token masking; loss = masked-token cross-entropy."""

    def draw(self, model: torch.nn.Module, x: torch.Tensor, gen: torch.Generator) -> Step:
        step = super().draw(model, x, gen)
        with torch.no_grad():
            ids = model.tokenize(x).flatten(1).float()
        k = model.spec.codebook_size  # Noisy Label: N(mean, std) of the batch's ids, rounded
        noise_ids = torch.randn(ids.shape, generator=gen).to(ids) * ids.std() + ids.mean()
        return step | {"noise_ids": noise_ids.round().clamp(0, k - 1).long()}

    def output(self, model: torch.nn.Module, x: torch.Tensor, step: Step) -> torch.Tensor:
        drop, masked = model._masks(step["mask"])
        return model.forward_decoder(model.encode(x, step["mask"]), drop, masked)

    def task_loss(self, model: torch.nn.Module, x: torch.Tensor, step: Step, *,
                  noisy: bool = False) -> torch.Tensor:
        _, masked = model._masks(step["mask"])
        with torch.no_grad():
            target = step["noise_ids"] if noisy else model.tokenize(x).flatten(1)
        return model.forward_loss(self.output(model, x, step), target, masked)


class DiffusionOps(FamilyOps):
    """Palette: the step also fixes gamma, eps and eps_c; the noise input is pure eps inside
    the hole (``forget_noise``); the loss is the masked noise-prediction MSE.

    ``unlearn.noise_type`` other than "normal" replaces that eps, in Li et al.'s forget target
    only, by ``noise_image``'s uniform / constant image mapped to Palette's [-1, 1] space
    (``forget_eps``): U[-1, 1) per pixel, or the batch's mean value; the retain terms and the
    baselines keep eps."""

    def draw(self, model: torch.nn.Module, x: torch.Tensor, gen: torch.Generator) -> Step:
        mask = self._mask(model, x, gen)
        gamma, noise, cond_noise = model.draw_noise(x, generator=gen)
        step = {"mask": mask, "gamma": gamma.to(x.device), "noise": noise,
                "cond_noise": cond_noise}
        kind = self.cfg.unlearn.noise_type
        if kind != "normal":
            step["forget_eps"] = noise_image(model, x, gen, kind) * 2 - 1
        return step

    def prepare(self, student: torch.nn.Module, teacher: torch.nn.Module) -> None:
        """The released unlearning configs' dropout (``PaletteSpec.unlearn_dropout``): 0.0 with
        the real retain set, 0.2 with the proxy one, where the teacher also runs in train mode
        (so its targets see dropout too)."""
        rates = getattr(student.spec, "unlearn_dropout", None)
        if rates is None:
            return
        proxy = self.cfg.unlearn.retain_source == "proxy"
        for model in (student, teacher):
            for m in model.modules():
                if isinstance(m, torch.nn.Dropout):
                    m.p = rates[proxy]
        if proxy:
            teacher.train()

    def _kw(self, step: Step) -> dict[str, Any]:
        return {k: step[k] for k in ("gamma", "noise", "cond_noise")}

    def embed(self, model: torch.nn.Module, x: torch.Tensor, step: Step) -> Embedding:
        return model.encode(x, step["mask"], **self._kw(step))

    def embed_noise(self, model: torch.nn.Module, x: torch.Tensor, step: Step) -> Embedding:
        kw = self._kw(step) | ({"noise": step["forget_eps"]} if "forget_eps" in step else {})
        return model.encode(x, step["mask"], forget_noise=True, **kw)

    def output(self, model: torch.nn.Module, x: torch.Tensor, step: Step, *,
               noisy: bool = False) -> torch.Tensor:
        feats = model.encode(x, step["mask"], forget_noise=noisy, **self._kw(step))
        return model.decode(feats, step["mask"], gamma=step["gamma"])

    def task_loss(self, model: torch.nn.Module, x: torch.Tensor, step: Step, *,
                  noisy: bool = False) -> torch.Tensor:
        """MSE(m * target, m * out); ``noisy``: the forget sample's noisy image inside the hole
        is pure eps and eps is the target (the released Palette fork's
        ``unlearn.py --learn_noise``)."""
        m, noise = step["mask"], step["noise"]
        target = noise
        if getattr(model.spec, "prediction", "eps") == "v":
            # v = sqrt(g) eps - sqrt(1 - g) y0 with the clean image the input implies: y0 for
            # real inputs; for the pure-eps input sqrt(g) y0' + sqrt(1 - g) eps = eps, i.e.
            # y0' = eps (1 - sqrt(1 - g)) / sqrt(g) (the eps model's target is eps either way)
            g = step["gamma"].reshape(-1, 1, 1, 1).to(x)
            y0 = noise * (1 - (1 - g).sqrt()) / g.sqrt() if noisy else x * 2 - 1
            target = g.sqrt() * noise - (1 - g).sqrt() * y0
        return F.mse_loss(m * self.output(model, x, step, noisy=noisy), m * target)


def ops_for(model: torch.nn.Module, cfg: RunConfig) -> FamilyOps:
    """The unlearning operations of the model's family (``l2l.models.Family.ops``)."""
    return globals()[family(model).ops](model, cfg)
