"""VQGAN tokenizer of the MAGE family: conv encoder, vector quantiser, conv decoder.

The module tree mirrors the tokenizer MAGE loads (``taming/models/vqgan.py`` with the MaskGIT-style
``Encoder``/``Decoder`` in LTH14/mage, config ``config/vqgan.yaml``), so the ``state_dict`` keys of
``vqgan_jax_strongaug.ckpt`` are ``encoder.*``, ``decoder.*`` and ``quantize.embedding.weight``
(no ``quant_conv``/``post_quant_conv``: the codebook dimension equals ``z_channels``). The layout
was read from the module code (the same files are vendored in LTH14/rcg); the checkpoint file itself
was not inspected, see ``load_official_vqgan``.

Architecture details kept from that code, because the official weights depend on them:
    * residual blocks: GroupNorm -> swish -> 3x3 conv (no bias), twice; when the width changes,
      the 1x1 ``nin_shortcut`` maps the *branch output* (a quirk of the JAX MaskGIT tokenizer,
      weight [out, out, 1, 1]), so the block input is not carried over;
    * the encoder downsamples by 2x2 average pooling (no weights), the decoder upsamples with
      nearest neighbour + 3x3 conv; no attention layers;
    * images go in as float [B, 3, H, W] in [0, 1] (no normalisation) and come out in about [0, 1].

Small-scale decisions (Li et al. use the released tokenizer ``vqgan_jax_strongaug.ckpt``, linked
from the jpmorganchase/i2i_mage README, and never retrain it): the tokenizer is trained with an L2
reconstruction loss plus the VQ codebook and commitment terms (beta 0.25). A real VQGAN adds a
perceptual and an adversarial term; the perceptual one needs a pretrained network (none ships),
the adversarial one is optional here (``train_tokenizer(adversarial=...)``): taming's hinge
PatchGAN, shrunk (``PatchDiscriminator``), weighted adaptively against the reconstruction
gradient at the decoder's last layer and switched on part-way through (the small scale uses it:
``config.FAMILY_RECIPES``). Codebook collapse is avoided with a k-means initialisation from the
first batch's encoder outputs and dead-code restarts (codes unused for a window of steps are
moved onto random encoder outputs of the current batch).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from l2l.images import take
from l2l.schedule import lr_at


@dataclass(frozen=True)
class VQGANSpec:
    """Architecture of one tokenizer size (square images).

    ``ch_mult`` has one entry per resolution level; the image is downsampled ``len(ch_mult) - 1``
    times by 2, so the token grid is ``img_size / 2 ** (len(ch_mult) - 1)`` on a side.
    """

    img_size: int
    ch: int
    ch_mult: tuple[int, ...]
    num_res_blocks: int
    embed_dim: int  # z_channels = codebook vector size
    n_embed: int  # codebook size
    norm_groups: int = 32
    beta: float = 0.25  # commitment weight

    def __post_init__(self) -> None:
        if self.img_size % self.downsample:
            raise ValueError(f"img_size {self.img_size} is not a multiple of {self.downsample}")
        for width in {self.ch * m for m in self.ch_mult}:
            if width % self.norm_groups:
                raise ValueError(f"width {width} is not divisible by {self.norm_groups} groups")

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @property
    def grid_size(self) -> int:
        return self.img_size // self.downsample


TOKENIZER_SIZES: dict[str, VQGANSpec] = {
    "smoke": VQGANSpec(32, 8, (1, 2, 2), 1, 8, 32, norm_groups=4),
    # 64 codes (not 512): the small transformer can predict them (hole CE 3.2 nats, 11 % acc.)
    "tiny": VQGANSpec(32, 16, (1, 1, 2), 1, 32, 64, norm_groups=8),
    # small scale since the zoo: the 8 x 8 grid with 128 codes, trained with the adversarial
    # term (config.FAMILY_RECIPES["small"]["vqgan"]: 2000 steps, scale 0.5). Its round trip alone
    # (encode, decode, paste the hole) has a retain centre_quarter hole FID of 0.50x the mean
    # fill's on fresh crops of the training photos; L2 alone blurs the retain textures: 1.14x
    # (512 codes: 1.12x). A 16 x 16 grid reaches 0.52x with L2 and 0.33x with the adversarial
    # term, but makes every MaskGIT pass about 5x dearer (257 tokens instead of 65): about 60 s
    # per 500 completions on one thread instead of 11 s, more than the cold run can pay.
    # 256 / 512 codes round-trip better on those crops (0.41 / 0.43) but not on the test tiles
    # (0.63 / 0.54 against this one's 0.54); random flips in tokenizer and transformer training
    # made the test-tile hole FID worse (original 0.58 / 0.76 of the mean fill's on centre_half).
    "small": VQGANSpec(32, 16, (1, 1, 2), 1, 32, 128, norm_groups=8),
    "base": VQGANSpec(256, 128, (1, 1, 2, 2, 4), 2, 256, 1024),  # config/vqgan.yaml
}


# Training budgets per scale: l2l.config.FAMILY_RECIPES (train.tokenizer_steps, tokenizer_lr).


class ResnetBlock(nn.Module):
    """MaskGIT residual block (see the module docstring for the shortcut quirk)."""

    def __init__(self, in_ch: int, out_ch: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch, eps=1e-6)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(groups, out_ch, eps=1e-6)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        if in_ch != out_ch:
            self.nin_shortcut = nn.Conv2d(out_ch, out_ch, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        skip = self.nin_shortcut(h) if hasattr(self, "nin_shortcut") else x
        return skip + h


class Upsample(nn.Module):
    """Nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """One resolution level: ``block`` (residual blocks) and, in the decoder, ``upsample``."""

    def __init__(self, widths: list[tuple[int, int]], groups: int, upsample: bool = False) -> None:
        super().__init__()
        self.block = nn.ModuleList(ResnetBlock(i, o, groups) for i, o in widths)
        if upsample:
            self.upsample = Upsample(widths[-1][1])


class Middle(nn.Module):
    """Two residual blocks at the lowest resolution."""

    def __init__(self, ch: int, groups: int) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(ch, ch, groups)
        self.block_2 = ResnetBlock(ch, ch, groups)

    def forward(self, x: Tensor) -> Tensor:
        return self.block_2(self.block_1(x))


def _level_widths(s: VQGANSpec, level: int, block_in: int) -> list[tuple[int, int]]:
    out = s.ch * s.ch_mult[level]
    return [(block_in if i == 0 else out, out) for i in range(s.num_res_blocks)]


class Encoder(nn.Module):
    """float [B, 3, H, W] in [0, 1] -> continuous codes [B, embed_dim, H/f, W/f]."""

    def __init__(self, s: VQGANSpec) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(3, s.ch, 3, padding=1, bias=False)
        self.down = nn.ModuleList()
        block_in = s.ch
        for level in range(len(s.ch_mult)):
            widths = _level_widths(s, level, block_in)
            self.down.append(Level(widths, s.norm_groups))
            block_in = widths[-1][1]
        self.mid = Middle(block_in, s.norm_groups)
        self.norm_out = nn.GroupNorm(s.norm_groups, block_in, eps=1e-6)
        self.conv_out = nn.Conv2d(block_in, s.embed_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)
        for i, level in enumerate(self.down):
            for blk in level.block:
                h = blk(h)
            if i != len(self.down) - 1:
                h = F.avg_pool2d(h, 2)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    """Quantised codes [B, embed_dim, h, w] -> image [B, 3, h*f, w*f] in about [0, 1]."""

    def __init__(self, s: VQGANSpec) -> None:
        super().__init__()
        block_in = s.ch * s.ch_mult[-1]
        self.conv_in = nn.Conv2d(s.embed_dim, block_in, 3, padding=1)
        self.mid = Middle(block_in, s.norm_groups)
        levels: list[Level] = []
        for level in reversed(range(len(s.ch_mult))):
            widths = _level_widths(s, level, block_in)
            levels.insert(0, Level(widths, s.norm_groups, upsample=level != 0))
            block_in = widths[-1][1]
        self.up = nn.ModuleList(levels)  # index 0 = full resolution, as in the official tree
        self.norm_out = nn.GroupNorm(s.norm_groups, block_in, eps=1e-6)
        self.conv_out = nn.Conv2d(block_in, 3, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.mid(self.conv_in(z))
        for level in reversed(self.up):
            for blk in level.block:
                h = blk(h)
            if hasattr(level, "upsample"):
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """Nearest-codebook-vector quantiser with a straight-through gradient (VQ-VAE / taming)."""

    def __init__(self, n_embed: int, dim: int, beta: float) -> None:
        super().__init__()
        self.beta = beta
        self.embedding = nn.Embedding(n_embed, dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / n_embed, 1.0 / n_embed)

    def nearest(self, z: Tensor) -> Tensor:
        """Codes [B, C, h, w] -> long [B, h, w] index of the closest codebook vector (L2)."""
        b, c, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, c)
        e = self.embedding.weight
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)[None]
        return dist.argmin(1).view(b, h, w)

    def lookup(self, ids: Tensor) -> Tensor:
        """long [B, h, w] -> codebook vectors [B, C, h, w]."""
        return self.embedding(ids).permute(0, 3, 1, 2)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns z_q with straight-through gradient [B, C, h, w], VQ loss (scalar), ids."""
        ids = self.nearest(z)
        z_q = self.lookup(ids)
        # codebook term pulls codes to the encoder; commitment (beta) pulls the encoder to codes
        loss = F.mse_loss(z_q, z.detach()) + self.beta * F.mse_loss(z, z_q.detach())
        return z + (z_q - z).detach(), loss, ids


class VQGAN(nn.Module):
    """Tokenizer: ``encode_tokens`` / ``decode_tokens`` between [0, 1] images and code ids."""

    def __init__(self, spec: VQGANSpec) -> None:
        super().__init__()
        self.spec = spec
        self.encoder = Encoder(spec)
        self.decoder = Decoder(spec)
        self.quantize = VectorQuantizer(spec.n_embed, spec.embed_dim, spec.beta)

    def encode_tokens(self, x: Tensor) -> Tensor:
        """float [B, 3, H, W] in [0, 1] -> long [B, h, w] code ids in [0, n_embed)."""
        return self.quantize.nearest(self.encoder(x))

    def decode_tokens(self, ids: Tensor) -> Tensor:
        """long [B, h, w] code ids -> float [B, 3, H, W] clamped to [0, 1]."""
        return self.decoder(self.quantize.lookup(ids)).clamp(0, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Round trip of x in [0, 1]: (reconstruction, unclamped [B, 3, H, W]; VQ loss; ids)."""
        z_q, vq_loss, ids = self.quantize(self.encoder(x))
        return self.decoder(z_q), vq_loss, ids


# ----------------------------------------------------------------------------- training
@torch.no_grad()
def kmeans_init(vq: VectorQuantizer, z: Tensor, *, generator: torch.Generator | None = None,
                iters: int = 5) -> None:
    """Codebook <- k-means (``iters`` Lloyd steps) of encoder outputs z [B, C, h, w].

    Starts from distinct random encoder vectors (sampled with replacement if there are fewer
    vectors than codes); empty clusters keep their start vector.
    """
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    n, k = len(flat), vq.embedding.num_embeddings
    where = generator.device if generator is not None else flat.device
    pick = (torch.randperm(n, generator=generator, device=where)[:k] if n >= k
            else torch.randint(n, (k,), generator=generator, device=where))
    codes = flat[pick.to(flat.device)].clone()
    for _ in range(iters):
        assign = torch.cdist(flat, codes).argmin(1)
        sums = torch.zeros_like(codes).index_add_(0, assign, flat)
        counts = torch.bincount(assign, minlength=k).to(flat.dtype)[:, None]
        codes = torch.where(counts > 0, sums / counts.clamp_min(1), codes)
    vq.embedding.weight.copy_(codes)


@torch.no_grad()
def restart_dead_codes(vq: VectorQuantizer, z: Tensor, dead: Tensor, *,
                       generator: torch.Generator | None = None) -> int:
    """Move the codes flagged in ``dead`` (bool [n_embed]) onto random encoder outputs of z."""
    n_dead = int(dead.sum())
    if n_dead:
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        where = generator.device if generator is not None else flat.device
        pick = torch.randint(len(flat), (n_dead,), generator=generator, device=where)
        vq.embedding.weight[dead] = flat[pick.to(flat.device)]
    return n_dead


def reconstruction_mse(tokenizer: VQGAN, x: Tensor) -> float:
    """Mean squared error of the token round trip on x [B, 3, H, W] in [0, 1] (no grad)."""
    with torch.no_grad():
        return F.mse_loss(tokenizer.decode_tokens(tokenizer.encode_tokens(x)), x).item()


class PatchDiscriminator(nn.Module):
    """PatchGAN critic (taming's ``NLayerDiscriminator``, shrunk, GroupNorm for BatchNorm):
    image [B, 3, S, S] in [0, 1] -> logits [B, 1, S / 2 ** layers, S / 2 ** layers]."""

    def __init__(self, ch: int = 32, layers: int = 2, groups: int = 8) -> None:
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(3, ch, 4, 2, 1), nn.LeakyReLU(0.2)]
        width = ch
        for _ in range(layers - 1):
            mods += [nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),
                     nn.GroupNorm(groups, 2 * width), nn.LeakyReLU(0.2)]
            width *= 2
        mods.append(nn.Conv2d(width, 1, 3, 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(2 * x - 1)


def adaptive_weight(rec: Tensor, adv: Tensor, last: Tensor, scale: float) -> Tensor:
    """taming's balance of the adversarial term: ``scale * |grad rec| / |grad adv|`` at the
    decoder's last weight (detached, clamped to [0, 1e4])."""
    g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adv, last, retain_graph=True)[0]
    return (scale * g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0, 1e4).detach()


def train_tokenizer(tokenizer: VQGAN, images: Any, *, steps: int, batch_size: int = 64,
                    lr: float = 2e-3, generator: torch.Generator | None = None,
                    restart_every: int = 20, adversarial: float = 0.0,
                    adversarial_start: float = 0.3, progress: bool = True) -> pd.DataFrame:
    """Train the tokenizer in place: L2 reconstruction + VQ codebook/commitment loss, plus, with
    ``adversarial`` > 0, a hinge PatchGAN term from step ``adversarial_start * steps`` on.

    Adam with 5 % warm-up then cosine decay. The codebook is k-means-initialised from the first
    batch; every ``restart_every`` steps, codes not chosen during that window are restarted on
    random encoder outputs of the current batch (0 disables restarts). The adversarial term is
    ``adaptive_weight(..., adversarial) * -D(reconstruction)``; the critic (``PatchDiscriminator``,
    same optimiser settings, initialised from ``generator``) takes one hinge step per step and is
    discarded afterwards.

    Args:
        tokenizer: the ``VQGAN`` to train (its parameters must be trainable).
        images: uint8/float [N, 3, S, S] tensor or indexable data set (values as ``data.take``).
        steps, batch_size, lr: optimisation budget.
        generator: CPU generator for batches and restarts (seeded by the caller).
        adversarial: scale of the adaptive adversarial weight (0: off, the L2-only tokenizer).
        adversarial_start: fraction of ``steps`` trained on reconstruction alone first.

    Returns:
        History with columns step, loss, rec_mse, vq_loss, codes_used, restarted, time_s, adv_loss,
        disc_loss (``codes_used`` = distinct codes in the step's batch; the last two NaN while the
        adversarial term is off).
    """
    if adversarial < 0 or not 0 <= adversarial_start <= 1:
        raise ValueError(f"adversarial = {adversarial} must be >= 0 and adversarial_start = "
                         f"{adversarial_start} in [0, 1]")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    device = next(tokenizer.parameters()).device
    tokenizer.train()
    opt = torch.optim.Adam(tokenizer.parameters(), lr=lr, betas=(0.5, 0.9))
    critic = critic_opt = None
    if adversarial > 0:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=gen)))
            critic = PatchDiscriminator().to(device)
        critic_opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.5, 0.9))
    adv_from = int(adversarial_start * steps) if critic is not None else steps
    used = torch.zeros(tokenizer.spec.n_embed, dtype=torch.bool, device=device)
    rows, start, restarted = [], time.perf_counter(), 0
    for step in tqdm(range(steps), desc="tokenizer", disable=not progress, mininterval=5):
        for o in (opt, critic_opt):
            for group in (o.param_groups if o is not None else ()):
                group["lr"] = lr_at(step, steps, lr, 0.05)
        x = take(images, torch.randint(len(images), (batch_size,), generator=gen)).to(device)
        if step == 0:
            kmeans_init(tokenizer.quantize, tokenizer.encoder(x).detach(), generator=gen)
        z = tokenizer.encoder(x)
        z_q, vq_loss, ids = tokenizer.quantize(z)
        out = tokenizer.decoder(z_q)
        rec = F.mse_loss(out, x)
        loss = rec + vq_loss
        adv_loss = disc_loss = torch.tensor(float("nan"))
        if step >= adv_from:
            adv_loss = -critic(out).mean()
            loss = loss + adaptive_weight(rec, adv_loss, tokenizer.decoder.conv_out.weight,
                                          adversarial) * adv_loss
        if not torch.isfinite(loss):
            raise FloatingPointError(f"tokenizer: loss is {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= adv_from:
            disc_loss = (F.relu(1 - critic(x)).mean() + F.relu(1 + critic(out.detach())).mean())
            critic_opt.zero_grad(set_to_none=True)
            disc_loss.backward()
            critic_opt.step()
        used[ids.flatten()] = True
        if restart_every and (step + 1) % restart_every == 0 and step < steps - restart_every:
            restarted += restart_dead_codes(tokenizer.quantize, z.detach(), ~used, generator=gen)
            used.zero_()
        if step % 10 == 0 or step == steps - 1:
            rows.append({"step": step, "loss": loss.item(), "rec_mse": rec.item(),
                         "vq_loss": vq_loss.item(), "codes_used": int(ids.unique().numel()),
                         "restarted": restarted, "time_s": time.perf_counter() - start,
                         "adv_loss": adv_loss.item(), "disc_loss": disc_loss.item()})
    tokenizer.eval()
    return pd.DataFrame(rows, columns=["step", "loss", "rec_mse", "vq_loss", "codes_used",
                                       "restarted", "time_s", "adv_loss", "disc_loss"])


def load_official_vqgan(tokenizer: VQGAN, checkpoint: Mapping[str, Any]) -> None:
    """Strictly load ``vqgan_jax_strongaug.ckpt`` (or its ``state_dict``) into ``tokenizer``.

    Expected keys (spec "base"): ``encoder.conv_in.weight`` [128, 3, 3, 3],
    ``encoder.down.{0..4}.block.{0,1}.{norm1,conv1,norm2,conv2[,nin_shortcut]}``,
    ``encoder.mid.block_{1,2}.*``, ``encoder.norm_out.*``, ``encoder.conv_out.{weight,bias}``
    [256, 512, 1, 1]; ``decoder.conv_in`` [512, 256, 3, 3], ``decoder.mid.*``,
    ``decoder.up.{0..4}.block.{0,1}.*``, ``decoder.up.{1..4}.upsample.conv.*``,
    ``decoder.norm_out.*``, ``decoder.conv_out`` [3, 128, 3, 3]; ``quantize.embedding.weight``
    [1024, 256]. Unconfirmed: read from the module code, not from the checkpoint file.

    Raises:
        RuntimeError: missing or unexpected keys, or shape mismatches.
    """
    state = checkpoint.get("state_dict", checkpoint)
    tokenizer.load_state_dict(dict(state), strict=True)
