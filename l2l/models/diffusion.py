"""Palette (Saharia et al. 2022) inpainting diffusion model: the "diffusion" family of Li et al.

Value ranges: public methods take images x float [B, 3, H, W] in [0, 1] and pixel masks float
[B or 1, 1, H, W] in {0, 1} (1 = hole); inside, images live in [-1, 1] (``l2l.data.to_pm1``).
The U-Net (``l2l.models.unet``) sees 6 channels, [y_cond, noisy image], and is conditioned on the
continuous noise level gamma in [0, 1] (Li et al.'s released fork,
jpmorganchase/i2i_Palette-Image-to-Image-Diffusion-Models, ``models/network.py``):

    y_cond = y0 * (1 - m) + m * eps_c                 eps_c ~ N(0, I)  (condition image)
    y_t    = sqrt(gamma) * y0 + sqrt(1 - gamma) * eps  eps ~ N(0, I)   (forward process)
    noisy  = m * y_t + (1 - m) * y0

and predicts eps; the training loss is Palette's MSE(m * eps, m * eps_hat), averaged over every
element. (Small sizes predict v = sqrt(gamma) eps - sqrt(1 - gamma) y0 instead, the same loss on
v: ``PaletteSpec.prediction``; with a few minutes of CPU training eps-prediction stays biased.)
Schedules are linear in beta with gamma_bar = cumprod(1 - beta). Training draws t
uniformly in {1 .. T-1} and gamma uniformly between gamma_bar[t] and gamma_bar[t-1] (0-based, as
Palette). Sampling: ancestral steps on the test schedule from y_t = y_cond, the known region reset
to y0 after every step. ``sample_steps`` < T *respaces* the test schedule: the sampler visits
``sample_steps`` evenly spaced indices of the T-step gamma_bar curve (same curve, fewer steps;
beta_k = 1 - gamma_bar_k / gamma_bar_{k-1}), so the paper preset (sample_steps = T = 2000) is the
released protocol and small sizes run the same curve in a few dozen steps.

Encoder / decoder (as in the released fork): E = ``cond_embed`` + ``input_blocks`` + ``middle_block``,
D = ``output_blocks`` + ``out``. **Shared parameter:** the noise-level embedding ``cond_embed``
belongs to E but its output also conditions every decoder ResBlock, so training E (as the
released code does) changes D's effective behaviour slightly too.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from l2l.images import centre_box_masks, from_pm1, to_pm1
from l2l.models.unet import UNet, UNetSpec

OptGenerator = torch.Generator | None
# noise-schedule buffers that Palette's Network stores next to ``denoise_fn.*`` in a checkpoint
SCHEDULE_BUFFERS = ("gammas", "sqrt_recip_gammas", "sqrt_recipm1_gammas",
                    "posterior_log_variance_clipped", "posterior_mean_coef1",
                    "posterior_mean_coef2")


# ----------------------------------------------------------------------------- schedules
def linear_gammas(steps: int, beta_start: float, beta_end: float) -> Tensor:
    """gamma_bar = cumprod(1 - beta), beta linear from beta_start to beta_end.

    Returns:
        float64 [steps] on the CPU, strictly decreasing, in (0, 1).
    """
    betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float64, device="cpu")
    return torch.cumprod(1.0 - betas, dim=0)


def respaced(gammas: Tensor, steps: int) -> Tensor:
    """``steps`` evenly spaced entries of a gamma_bar curve (first and last included).

    Returns:
        float64 [steps], decreasing; entry k is the noise level of sampler step k.
    """
    if not 1 <= steps <= len(gammas):
        raise ValueError(f"sample_steps must be in 1..{len(gammas)}, got {steps}")
    idx = torch.linspace(0, len(gammas) - 1, steps, dtype=torch.float64, device=gammas.device)
    idx = idx.round().long()
    return gammas[idx]


def draw_gamma(gammas: Tensor, batch: int, *,
               generator: OptGenerator = None) -> tuple[Tensor, Tensor]:
    """Palette's training noise levels: t ~ U{1..T-1}, gamma ~ U(gammas[t], gammas[t-1]).

    Returns:
        gamma float [batch] in (0, 1) (dtype/device of ``gammas``), t int64 [batch].
    """
    where = generator.device if generator is not None else gammas.device
    t = torch.randint(1, len(gammas), (batch,), generator=generator, device=where).to(gammas.device)
    u = torch.rand(batch, generator=generator, device=where).to(gammas)
    return gammas[t - 1] + u * (gammas[t] - gammas[t - 1]), t


def q_sample(y0: Tensor, gamma: Tensor, noise: Tensor) -> Tensor:
    """Forward process y_t = sqrt(gamma) * y0 + sqrt(1 - gamma) * noise.

    Args:
        y0: float [B, C, H, W] in [-1, 1]. gamma: float [B] (or broadcastable) in [0, 1].
        noise: float [B, C, H, W], N(0, I).
    """
    g = gamma.reshape(-1, *([1] * (y0.ndim - 1))) if gamma.ndim == 1 else gamma
    return g.sqrt() * y0 + (1 - g).sqrt() * noise


def condition_image(y0: Tensor, mask: Tensor, cond_noise: Tensor) -> Tensor:
    """Palette's condition image y0 * (1 - m) + m * eps_c (y0 in [-1, 1], mask 1 = hole)."""
    return y0 * (1 - mask) + mask * cond_noise


def unet_input(y0: Tensor, mask: Tensor, y_cond: Tensor, gamma: Tensor, noise: Tensor, *,
               forget_noise: bool | Tensor = False) -> Tensor:
    """The 6-channel U-Net input [y_cond, m * y~_t + (1 - m) * y0], float [B, 6, H, W].

    y~_t = q_sample(y0, gamma, noise), except for samples with ``forget_noise`` (bool, or bool
    [B] per sample) where y~_t = noise: Li et al.'s label-dependent input for forget samples
    (released fork, ``models/network.py``): only the noisy-image channels inside the hole change.
    """
    y_t = q_sample(y0, gamma, noise)
    if isinstance(forget_noise, Tensor):
        y_t = torch.where(forget_noise.reshape(-1, 1, 1, 1).to(y0.device), noise, y_t)
    elif forget_noise:
        y_t = noise
    return torch.cat([y_cond, mask * y_t + (1 - mask) * y0], dim=1)


# ----------------------------------------------------------------------------- hybrid masks
def _randint(lo: int, hi: int, gen: OptGenerator) -> int:
    """Uniform integer in [lo, hi) (numpy.random.randint semantics)."""
    return int(torch.randint(lo, hi, (1,), generator=gen))


def random_box(size: int, gen: OptGenerator) -> tuple[int, int, int, int]:
    """Palette's ``random_bbox`` scaled from 256 px (s = size / 256): (top, left, h, w) of a box
    of side at most 128 s, shrunk by up to 40 s / 2 from the top-left, >= 20 s from the border."""
    s = size / 256
    box, delta, margin = max(1, round(128 * s)), round(40 * s), round(20 * s)
    top = _randint(margin, max(margin + 1, size - margin - box), gen)
    left = _randint(margin, max(margin + 1, size - margin - box), gen)
    dt, dl = _randint(0, delta // 2 + 1, gen), _randint(0, delta // 2 + 1, gen)
    return top + dt, left + dl, box - dt, box - dl


def stroke_segments(size: int, gen: OptGenerator) -> Tensor:
    """Free-form strokes as Palette's ``brush_stroke_mask``, scaled from 256 px, no OpenCV/PIL.

    1-3 strokes (``randint(1, max_loops=4)``), each a polyline of 4-11 segments with turning
    angles 2 pi / 5 +- U(0, 2 pi / 15) (alternating sign), segment length N(r, r / 2) clipped to
    [0, 2r] with r = size * sqrt(2) / 8, width in [12 s, 40 s) px (s = size / 256). Differences
    from the official code: vertices are not truncated to integers, the length scale is r / 2
    (official: r // 2, e.g. 22 instead of 22.6 px), and there is no random flip (the official
    flips discard their result, so they never happen either).

    Returns:
        float64 [N, 5]: x0, y0, x1, y1 (pixel units, x = column) and half the brush width.
    """
    s = size / 256
    w_lo = max(1, round(12 * s))
    w_hi = max(w_lo + 1, round(40 * s))
    radius = math.sqrt(2 * size * size) / 8
    mean_angle, angle_range = 2 * math.pi / 5, 2 * math.pi / 15
    segments = []
    for _ in range(_randint(1, 4, gen)):
        n = _randint(4, 12, gen)
        a_min = mean_angle - angle_range * float(torch.rand(1, generator=gen))
        a_max = mean_angle + angle_range * float(torch.rand(1, generator=gen))
        angles = a_min + (a_max - a_min) * torch.rand(n, generator=gen, dtype=torch.float64)
        angles[0::2] = 2 * math.pi - angles[0::2]
        lengths = (radius + radius / 2 * torch.randn(n, generator=gen, dtype=torch.float64))
        lengths = lengths.clamp(0, 2 * radius)
        x, y = float(_randint(0, size, gen)), float(_randint(0, size, gen))
        half = _randint(w_lo, w_hi, gen) / 2
        for a, r in zip(angles.tolist(), lengths.tolist()):
            nx = min(max(x + r * math.cos(a), 0.0), size)
            ny = min(max(y + r * math.sin(a), 0.0), size)
            segments.append((x, y, nx, ny, half))
            x, y = nx, ny
    return torch.tensor(segments, dtype=torch.float64)


def capsules(seg: Tensor, size: int) -> Tensor:
    """Rasterise segments as brush strokes: the union of discs of radius ``half`` stamped
    continuously along each segment (pixel centres within ``half`` of it; round ends cover the
    official discs at the vertices).

    Args:
        seg: float [N, 5] rows (x0, y0, x1, y1, half) as ``stroke_segments``.

    Returns:
        bool [N, size, size], one stroke segment per map.
    """
    p = torch.arange(size, dtype=seg.dtype)
    py, px = p.view(1, -1, 1), p.view(1, 1, -1)
    x0, y0, x1, y1, half = (seg[:, i].view(-1, 1, 1) for i in range(5))
    dx, dy = x1 - x0, y1 - y0
    t = (((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy).clamp_min(1e-12)).clamp(0, 1)
    return (px - x0 - t * dx) ** 2 + (py - y0 - t * dy) ** 2 <= half * half


def hybrid_mask(batch: int, size: int, *, generator: OptGenerator = None) -> Tensor:
    """Palette's train-time "hybrid" masks: a random box united with brush strokes.

    Returns:
        float32 [batch, 1, size, size] in {0, 1} (1 = hole), never empty; on the CPU.
    """
    out = torch.zeros(batch, size, size)
    owner, segs = [], []
    for i in range(batch):
        top, left, h, w = random_box(size, generator)
        out[i, top:top + h, left:left + w] = 1.0
        segs.append(stroke_segments(size, generator))
        owner += [i] * len(segs[-1])
    seg, idx = torch.cat(segs), torch.tensor(owner)
    chunk = max(1, 2**22 // (size * size))  # bounded memory at 256 px
    for j in range(0, len(seg), chunk):
        out.index_add_(0, idx[j:j + chunk], capsules(seg[j:j + chunk].float(), size).float())
    return out.clamp_(max=1.0).unsqueeze(1)


# ----------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class PaletteSpec:
    """U-Net plus schedules and sampler.

    Attributes:
        unet: the U-Net architecture.
        train_schedule / test_schedule: (T, beta_start, beta_end) of the linear beta schedules;
            the test schedule is the unlearning fork's (T = 2000; Janspiry's config: 1000).
        sample_steps: sampler steps on the (respaced) test schedule; T = the released protocol.
        min_gamma: the sampler respaces only the part of the test curve with gamma_bar >=
            min_gamma (0 = the whole curve, as released). At 2000 test steps gamma_bar < 1e-4
            from step 635 on, so a few-step sampler would spend most steps on pure noise.
        sampler: "ancestral" (Palette's p_sample) or "ddim" (deterministic when eta = 0).
        eta: DDIM noise scale (1.0 = ancestral-like variance, 0.0 = deterministic).
        temperature: factor on the ancestral sampler's noise std (1.0 = Palette; < 1 trades
            diversity for a lower per-pixel error, a small-scale option).
        prediction: what the U-Net output means: "eps" (Palette: the noise) or "v" (small-scale
            option, Salimans & Ho 2022: v = sqrt(gamma) eps - sqrt(1 - gamma) y0, loss
            MSE(m * v, m * v_hat)). With eps the loss weights the y0 error by gamma / (1 - gamma),
            so a briefly trained model barely learns the hole's content at the high noise levels
            that decide it; v weights it by 1 / (1 - gamma) >= 1.
    """

    unet: UNetSpec
    train_schedule: tuple[int, float, float] = (2000, 1e-6, 1e-2)
    test_schedule: tuple[int, float, float] = (2000, 1e-4, 0.09)
    sample_steps: int = 2000
    min_gamma: float = 0.0
    sampler: str = "ancestral"
    eta: float = 0.0
    temperature: float = 1.0
    prediction: str = "eps"
    # train-time masks: "hybrid" (Palette's random box + brush strokes) or "hybrid_centre"
    # (small scale, l2l's choice): each sample takes, with probability 1/2, a centred square of
    # even side from image_size/4 to image_size/2 instead (``images.centre_box_masks``), the
    # family of the test holes
    train_mask: str = "hybrid"
    # the released unlearning configs' U-Net dropout, (real retain, proxy retain): 0.0 in
    # ``unlearn_inpainting_places2.json``, 0.2 in the proxy config, whose teacher also runs in
    # train mode (the released fork; ``l2l.unlearn.ops.DiffusionOps.prepare``). None: the
    # architecture's own dropout throughout (the small-scale U-Nets have none).
    unlearn_dropout: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.prediction not in ("eps", "v"):
            raise ValueError(f"prediction must be 'eps' or 'v', got {self.prediction!r}")
        if self.train_mask not in ("hybrid", "hybrid_centre"):
            raise ValueError(f"train_mask must be 'hybrid' or 'hybrid_centre', got "
                             f"{self.train_mask!r}")
        if self.sampler not in ("ancestral", "ddim"):
            raise ValueError(f"sampler must be 'ancestral' or 'ddim', got {self.sampler!r}")
        self.sampling_curve()  # validates the step count

    def sampling_curve(self) -> Tensor:
        """The sampler's noise levels, float64 [sample_steps], decreasing (CPU)."""
        curve = linear_gammas(*self.test_schedule)
        return respaced(curve[curve >= self.min_gamma], self.sample_steps)


SIZES: dict[str, PaletteSpec] = {
    "smoke": PaletteSpec(UNetSpec(32, inner_channel=8, channel_mults=(1, 2), res_blocks=1,
                                  attn_res=(), num_head_channels=8, dropout=0.0), sample_steps=4),
    # small scale (32 px), sized for 2 shared CPU cores: base 8 (0.25 s per batch-64 step, one
    # thread), attention only in the middle block (8 x 8), v-prediction, half of the training
    # masks centred squares (train_mask "hybrid_centre"), and an ancestral sampler of 20 steps on
    # the test curve above gamma_bar 1e-4 at temperature 1. Chosen on fresh crops of the
    # training photos (500 forget + 500 retain, the held-out test tiles unused) for hole FID
    # against the per-image mean-colour fill, recipe FAMILY_RECIPES["small"]["diffusion"]
    # (1500 steps): worst ratio over {centre_half, centre_quarter} x {forget, retain} 0.39
    # (retrain on retain only: 0.48); 17 s per 500 completions. What did not reach it: the
    # earlier hole-MSE choice (560 steps, plain hybrid masks, temperature 0.5, 10 steps):
    # 3.81 on centre_quarter; hybrid_centre at temperature 1 with 10 steps: 1.14; 560 steps and
    # 20 steps: 0.55. 30 sampler steps: 0.33 at 1.5x the sampling time.
    "tiny": PaletteSpec(UNetSpec(32, inner_channel=8, channel_mults=(1, 2, 2), res_blocks=1,
                                 attn_res=(), num_head_channels=16, dropout=0.0),
                        sample_steps=20, min_gamma=1e-4, temperature=1.0, prediction="v",
                        train_mask="hybrid_centre"),
    # Palette Places2 inpainting (the released fork's config inpainting_places2*.json)
    "places2": PaletteSpec(UNetSpec(256), sample_steps=2000, unlearn_dropout=(0.0, 0.2)),
}


class Palette(nn.Module):
    """Palette inpainting model; see the module docstring for ranges and conventions."""

    family = "diffusion"

    def __init__(self, spec: PaletteSpec) -> None:
        super().__init__()
        self.spec = spec
        self.denoise_fn = UNet(spec.unet)  # official attribute name: keys "denoise_fn.*"
        gammas = linear_gammas(*spec.train_schedule).float()
        self.register_buffer("train_gammas", gammas, persistent=False)

    @property
    def image_size(self) -> int:
        return self.spec.unet.image_size

    def _device(self) -> torch.device:
        return self.train_gammas.device

    def _randn(self, shape: torch.Size | tuple[int, ...], generator: OptGenerator,
               device: torch.device) -> Tensor:
        # draw on the generator's device, so that a CPU generator also drives a CUDA model
        where = generator.device if generator is not None else device
        return torch.randn(shape, generator=generator, device=where).to(device)

    @staticmethod
    def q_sample(y0: Tensor, gamma: Tensor, noise: Tensor) -> Tensor:
        """Forward process; see the module-level ``q_sample`` (y0 in [-1, 1])."""
        return q_sample(y0, gamma, noise)

    def sample_mask(self, batch: int, *, generator: OptGenerator = None,
                    device: torch.device | str | None = None) -> Tensor:
        """Train-time T: hybrid pixel masks float [batch, 1, S, S] in {0, 1} (1 = hole); with
        ``spec.train_mask = "hybrid_centre"`` about half of them are centred squares."""
        out = hybrid_mask(batch, self.image_size, generator=generator)
        if self.spec.train_mask == "hybrid_centre":
            boxes = centre_box_masks(batch, self.image_size, generator=generator)
            pick = torch.rand(batch, 1, 1, 1, generator=generator) < 0.5
            out = torch.where(pick, boxes, out)
        return out.to(device or self._device())

    def draw_noise(self, x: Tensor, *,
                   generator: OptGenerator = None) -> tuple[Tensor, Tensor, Tensor]:
        """One draw of the step's randomness, in this order: gamma float [B] (training
        distribution), eps float [B, 3, H, W] and the condition noise eps_c [B, 3, H, W]."""
        gamma, _ = draw_gamma(self.train_gammas, x.shape[0], generator=generator)
        noise = self._randn(x.shape, generator, x.device)
        return gamma, noise, self._randn(x.shape, generator, x.device)

    def build_input(self, x: Tensor, mask: Tensor, *, gamma: Tensor, noise: Tensor,
                    cond_noise: Tensor, forget_noise: bool | Tensor = False) -> Tensor:
        """U-Net input float [B, 6, H, W] for x in [0, 1]; see ``unet_input``."""
        y0 = to_pm1(x)
        mask = mask.to(x)
        return unet_input(y0, mask, condition_image(y0, mask, cond_noise), gamma, noise,
                          forget_noise=forget_noise)

    def encode(self, x: Tensor, mask: Tensor, *, gamma: Tensor | None = None,
               noise: Tensor | None = None, cond_noise: Tensor | None = None,
               forget_noise: bool | Tensor = False, generator: OptGenerator = None) -> list[Tensor]:
        """Encoder features of x float [B, 3, H, W] in [0, 1] under pixel mask [B, 1, H, W].

        gamma [B], noise eps and condition noise eps_c [B, 3, H, W] that are None are drawn from
        ``generator`` (in that order, as ``draw_noise``); pass the same tensors to student and
        teacher. ``forget_noise`` (bool or bool [B]) replaces the noisy image inside the hole by
        pure eps (Li et al.'s forget input in the released fork).

        Returns:
            ``denoise_fn.num_features`` maps (13 at paper size): every input block's output and
            the middle-block output, float [B, C_k, H_k, W_k].
        """
        if gamma is None or noise is None or cond_noise is None:
            g, n, c = self.draw_noise(x, generator=generator)
            gamma = g if gamma is None else gamma
            noise = n if noise is None else noise
            cond_noise = c if cond_noise is None else cond_noise
        h = self.build_input(x, mask, gamma=gamma.to(x.device), noise=noise, cond_noise=cond_noise,
                             forget_noise=forget_noise)
        return self.denoise_fn.encode(h, self.denoise_fn.embed(gamma.to(x.device)))

    def decode(self, feats: list[Tensor], mask: Tensor | None = None, *, gamma: Tensor) -> Tensor:
        """Predicted noise eps_hat float [B, 3, H, W] (N(0, I) scale) from ``encode`` features
        (v_hat with ``spec.prediction`` = "v").

        ``gamma`` [B] must be the level used by ``encode`` (the decoder is conditioned on it
        through ``cond_embed``); ``mask`` is unused (the hole is already in the features).
        """
        del mask
        return self.denoise_fn.decode(feats, self.denoise_fn.embed(gamma.to(feats[0].device)))

    def training_loss(self, x: Tensor, *, generator: OptGenerator = None,
                      mask: Tensor | None = None) -> Tensor:
        """Palette's loss MSE(m * eps, m * eps_hat) (mean over all elements) on x [B, 3, H, W]
        in [0, 1], with hybrid masks drawn from ``generator`` unless ``mask`` is given."""
        if mask is None:
            mask = self.sample_mask(x.shape[0], generator=generator, device=x.device)
        gamma, noise, cond_noise = self.draw_noise(x, generator=generator)
        h = self.build_input(x, mask, gamma=gamma, noise=noise, cond_noise=cond_noise)
        out = self.denoise_fn(h, gamma)
        if self.spec.prediction == "v":
            g = gamma.reshape(-1, 1, 1, 1).to(x)
            noise = g.sqrt() * noise - (1 - g).sqrt() * to_pm1(x)  # the v target
        return F.mse_loss(mask * out, mask * noise)

    def sampling_gammas(self) -> Tensor:
        """Noise levels of the sampler's steps, float64 [sample_steps], decreasing."""
        return self.spec.sampling_curve()

    @torch.no_grad()
    def complete(self, x: Tensor, mask: Tensor, *, generator: OptGenerator = None) -> Tensor:
        """Inpaint the hole by ``sample_steps`` reverse steps (run in eval mode).

        Args:
            x: float [B, 3, H, W] in [0, 1]. mask: float [B or 1, 1, H, W] in {0, 1}, 1 = hole.
            generator: drives eps_c and the sampler noise (same seed -> same output).

        Returns:
            float [B, 3, H, W] in [0, 1]; pixels outside the hole are x, bit-exact.
        """
        was_training = self.training
        self.eval()
        b = x.shape[0]
        m = mask.to(x).expand(b, 1, *x.shape[2:])
        hole = m > 0.5
        y0 = to_pm1(x)
        y_cond = condition_image(y0, m, self._randn(x.shape, generator, x.device))
        y_t = y_cond
        gammas = self.sampling_gammas().tolist()
        s = self.spec
        for k in reversed(range(len(gammas))):
            g, g_prev = gammas[k], (gammas[k - 1] if k > 0 else 1.0)
            out = self.denoise_fn(torch.cat([y_cond, y_t], dim=1), x.new_full((b,), g))
            if s.prediction == "v":
                y0_hat = (math.sqrt(g) * y_t - math.sqrt(1 - g) * out).clamp(-1, 1)
            else:  # the floor only guards 1 / sqrt(g) (g ~ 1e-39 at the end of the test curve)
                y0_hat = ((y_t - math.sqrt(1 - g) * out) / math.sqrt(max(g, 1e-20))).clamp(-1, 1)
            if s.sampler == "ddim":
                eps = (y_t - math.sqrt(g) * y0_hat) / math.sqrt(1 - g)
                sigma = s.eta * math.sqrt((1 - g_prev) / (1 - g) * (1 - g / g_prev))
                y_t = math.sqrt(g_prev) * y0_hat + math.sqrt(max(1 - g_prev - sigma**2, 0.0)) * eps
            else:  # posterior q(y_{k-1} | y_k, y0_hat) of the respaced chain
                beta = 1 - g / g_prev
                y_t = (beta * math.sqrt(g_prev) / (1 - g)) * y0_hat \
                    + ((1 - g_prev) * math.sqrt(1 - beta) / (1 - g)) * y_t
                sigma = s.temperature * math.sqrt(beta * (1 - g_prev) / (1 - g))
            if k > 0 and sigma > 0:
                y_t = y_t + sigma * self._randn(x.shape, generator, x.device)
            y_t = torch.where(hole, y_t, y0)
        self.train(was_training)
        return torch.where(hole, from_pm1(y_t).clamp(0, 1), x)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """cond_embed, input_blocks, middle_block (cond_embed also feeds the decoder)."""
        u = self.denoise_fn
        return [p for m in (u.cond_embed, u.input_blocks, u.middle_block) for p in m.parameters()]

    def decoder_parameters(self) -> list[nn.Parameter]:
        """output_blocks, out."""
        u = self.denoise_fn
        return [p for m in (u.output_blocks, u.out) for p in m.parameters()]


def load_palette_state_dict(model: Palette, state_dict: dict[str, Tensor], *,
                            assign: bool = False) -> None:
    """Load an official Palette ``{epoch}_Network.pth`` state dict strictly.

    Accepts Palette ``Network`` keys (``denoise_fn.*``, optionally behind a ``module.`` prefix)
    or bare U-Net keys; drops the noise-schedule buffers the Network stores next to them
    (``SCHEDULE_BUFFERS``: the sampler recomputes them from the spec). Anything else missing or
    unexpected raises ``RuntimeError``. ``assign=True`` lets a ``meta``-device model adopt the
    tensors without allocating first.
    """
    clean = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if key in SCHEDULE_BUFFERS:
            continue
        clean[key if key.startswith("denoise_fn.") else f"denoise_fn.{key}"] = value
    model.load_state_dict(clean, strict=True, assign=assign)


def build_palette(size: str, **overrides: object) -> Palette:
    """A freshly initialised Palette of a named size (``SIZES``: smoke, tiny, places2).

    ``overrides`` replace ``PaletteSpec`` fields (e.g. ``sample_steps=25``, ``sampler="ddim"``)
    or, when the name is a ``UNetSpec`` field, U-Net fields (e.g. ``inner_channel=48``).

    Raises:
        ValueError: unknown ``size`` (the message lists the known ones).
        TypeError: an override that is neither a ``PaletteSpec`` nor a ``UNetSpec`` field.
    """
    if size not in SIZES:
        raise ValueError(f"unknown Palette size {size!r}; known sizes: {', '.join(SIZES)}")
    spec = SIZES[size]
    unet_fields = {f.name for f in dataclasses.fields(UNetSpec)}
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    unet_kw = {k: v for k, v in overrides.items() if k in unet_fields}
    rest = {k: v for k, v in overrides.items() if k not in unet_fields}
    spec = dataclasses.replace(spec, unet=dataclasses.replace(spec.unet, **unet_kw), **rest)
    return Palette(spec)
