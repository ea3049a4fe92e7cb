"""Guided-diffusion U-Net as used by Palette (Saharia et al. 2022), with the official weight layout.

Module and parameter names follow the ``UNet`` of Palette's ``models/guided_diffusion_modules``
(``cond_embed``, ``input_blocks``, ``middle_block``, ``output_blocks``, ``out``; inside a ResBlock
``in_layers.{0,2}``, ``emb_layers.1``, ``out_layers.{0,3}``, ``skip_connection``; inside an
attention block ``norm``, ``qkv``, ``proj_out``), so the released Places2 inpainting weights load
strictly (see ``l2l.models.diffusion.load_palette_state_dict`` for the ``denoise_fn.`` prefix).
The code is written from the architecture description, not copied.

Conventions: feature maps are float [B, C, H, W]; the network is conditioned on the continuous
noise level gamma in [0, 1] (the cumulative product of 1 - beta), not on a step index.
``attn_res`` holds *down-sampling factors* (1, 2, 4, ...) at which attention is used, as in the
official code: with ``attn_res=(16,)`` and four levels (factors 1, 2, 4, 8) the only attention
layer is the one in the middle block (the released Palette fork's Places2 configuration).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class UNetSpec:
    """U-Net hyper-parameters (names as in Palette's JSON configs).

    Attributes:
        image_size: side of the square input (only used for documentation and checks).
        in_channel: input channels (6 = condition image + noisy image).
        out_channel: output channels (3 = predicted noise).
        inner_channel: base width; the noise-level embedding has 4x this width.
        channel_mults: width multiplier per level; level k works at image_size / 2**k.
        res_blocks: ResBlocks per level in the encoder (the decoder has one more per level).
        attn_res: down-sampling factors with attention (the middle block always has one).
        num_head_channels: channels per attention head.
        dropout: dropout inside every ResBlock (Palette Places2: 0.2).
        norm_groups: GroupNorm groups (official 32); a layer with C channels uses gcd(groups, C).
    """

    image_size: int = 256
    in_channel: int = 6
    out_channel: int = 3
    inner_channel: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 4, 8)
    res_blocks: int = 2
    attn_res: tuple[int, ...] = (16,)
    num_head_channels: int = 32
    dropout: float = 0.2
    norm_groups: int = 32

    def __post_init__(self) -> None:
        levels = len(self.channel_mults)
        if self.image_size % 2 ** (levels - 1):
            raise ValueError(f"image_size {self.image_size} is not divisible by 2**{levels - 1}")
        if self.inner_channel % 2:
            raise ValueError("inner_channel must be even (sin/cos halves of the gamma embedding)")


def gamma_embedding(gamma: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of the noise level (the official ``gamma_embedding`` convention).

    Args:
        gamma: float [B], noise levels in [0, 1] (any real value works).
        dim: embedding width (even).
        max_period: lowest frequency is 1 / max_period.

    Returns:
        float32 [B, dim]: ``[cos(gamma * f_i), sin(gamma * f_i)]`` with
        ``f_i = max_period ** (-i / (dim / 2))``, i = 0 .. dim/2 - 1; values in [-1, 1].
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) / half * torch.arange(half, device=gamma.device))
    angle = gamma.float().reshape(-1, 1) * freqs
    return torch.cat([angle.cos(), angle.sin()], dim=1)


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with gcd(groups, channels) groups (= ``groups`` whenever it divides C)."""
    return nn.GroupNorm(math.gcd(groups, channels), channels)


def zeroed(module: nn.Module) -> nn.Module:
    """Zero all parameters of ``module`` (guided-diffusion init of residual output layers)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """Residual block with FiLM ("scale-shift norm") conditioning on the embedding.

    h = conv(SiLU(GN(x))); h = GN(h) * (1 + scale) + shift with (scale, shift) = Linear(SiLU(emb));
    out = skip(x) + conv(dropout(SiLU(h))). ``resample`` = "down" (2x2 average pooling) or
    "up" (nearest 2x) is applied to both branches between the first norm and the first conv.
    """

    def __init__(self, channels: int, emb_channels: int, dropout: float, out_channels: int | None,
                 groups: int, resample: str | None = None) -> None:
        super().__init__()
        out = out_channels or channels
        self.resample = resample
        self.in_layers = nn.Sequential(
            group_norm(channels, groups), nn.SiLU(), nn.Conv2d(channels, out, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * out))
        self.out_layers = nn.Sequential(
            group_norm(out, groups), nn.SiLU(), nn.Dropout(dropout),
            zeroed(nn.Conv2d(out, out, 3, padding=1)))
        self.skip_connection = nn.Identity() if out == channels else nn.Conv2d(channels, out, 1)

    def _resample(self, x: Tensor) -> Tensor:
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        norm_act, conv = self.in_layers[:-1], self.in_layers[-1]
        h = conv(self._resample(norm_act(x)))
        x = self._resample(x)
        scale, shift = self.emb_layers(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.out_layers[0](h) * (1 + scale) + shift
        return self.skip_connection(x) + self.out_layers[1:](h)


class AttentionBlock(nn.Module):
    """Spatial self-attention, qkv as one 1x1 Conv1d, heads split before q/k/v (legacy order)."""

    def __init__(self, channels: int, num_head_channels: int, groups: int) -> None:
        super().__init__()
        if channels % num_head_channels:
            raise ValueError(f"{channels} channels are not divisible by {num_head_channels}")
        self.num_heads = channels // num_head_channels
        self.norm = group_norm(channels, groups)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = zeroed(nn.Conv1d(channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        b, c, hgt, wid = x.shape
        flat = x.reshape(b, c, hgt * wid)
        qkv = self.qkv(self.norm(flat)).reshape(b, self.num_heads, 3 * c // self.num_heads, -1)
        q, k, v = qkv.transpose(2, 3).chunk(3, dim=3)  # each [B, heads, T, C / heads]
        a = F.scaled_dot_product_attention(q, k, v).transpose(2, 3).reshape(b, c, -1)
        return (flat + self.proj_out(a)).reshape(b, c, hgt, wid)


class EmbedSequential(nn.Sequential):
    """Sequential container that hands the embedding to its ResBlocks."""

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


class UNet(nn.Module):
    """Palette's guided-diffusion U-Net, split into ``embed`` / ``encode`` / ``decode``.

    ``forward(x, gamma)`` = ``decode(encode(x, embed(gamma)), embed(gamma))``.
    """

    def __init__(self, spec: UNetSpec) -> None:
        super().__init__()
        self.spec = s = spec
        emb, g, drop = 4 * s.inner_channel, s.norm_groups, s.dropout
        self.cond_embed = nn.Sequential(
            nn.Linear(s.inner_channel, emb), nn.SiLU(), nn.Linear(emb, emb))
        ch = s.inner_channel * s.channel_mults[0]
        self.input_blocks = nn.ModuleList(
            [EmbedSequential(nn.Conv2d(s.in_channel, ch, 3, padding=1))])
        skips, ds = [ch], 1
        for level, mult in enumerate(s.channel_mults):
            for _ in range(s.res_blocks):
                layers: list[nn.Module] = [ResBlock(ch, emb, drop, s.inner_channel * mult, g)]
                ch = s.inner_channel * mult
                if ds in s.attn_res:
                    layers.append(AttentionBlock(ch, s.num_head_channels, g))
                self.input_blocks.append(EmbedSequential(*layers))
                skips.append(ch)
            if level < len(s.channel_mults) - 1:
                self.input_blocks.append(EmbedSequential(ResBlock(ch, emb, drop, ch, g, "down")))
                skips.append(ch)
                ds *= 2
        self.middle_block = EmbedSequential(
            ResBlock(ch, emb, drop, None, g), AttentionBlock(ch, s.num_head_channels, g),
            ResBlock(ch, emb, drop, None, g))
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(s.channel_mults))):
            for i in range(s.res_blocks + 1):
                layers = [ResBlock(ch + skips.pop(), emb, drop, s.inner_channel * mult, g)]
                ch = s.inner_channel * mult
                if ds in s.attn_res:
                    layers.append(AttentionBlock(ch, s.num_head_channels, g))
                if level and i == s.res_blocks:
                    layers.append(ResBlock(ch, emb, drop, ch, g, "up"))
                    ds //= 2
                self.output_blocks.append(EmbedSequential(*layers))
        self.out = nn.Sequential(
            group_norm(ch, g), nn.SiLU(), zeroed(nn.Conv2d(ch, s.out_channel, 3, padding=1)))

    @property
    def num_features(self) -> int:
        """Length of the ``encode`` list: every input block plus the middle block."""
        return len(self.input_blocks) + 1

    def embed(self, gamma: Tensor) -> Tensor:
        """Noise-level embedding: gamma float [B] in [0, 1] -> float [B, 4 * inner_channel]."""
        return self.cond_embed(gamma_embedding(gamma.reshape(-1), self.spec.inner_channel))

    def encode(self, x: Tensor, emb: Tensor) -> list[Tensor]:
        """Input blocks + middle block.

        Args:
            x: float [B, in_channel, H, W] (Palette: [-1, 1]-range images and N(0, 1) noise).
            emb: ``embed(gamma)``, float [B, 4 * inner_channel].

        Returns:
            ``num_features`` maps: the output of every input block (the skip features, in order)
            and, last, the middle-block output. Paper preset at 256 px: 13 maps, 64@256^2 ...
            512@32^2 (as the released Palette fork's ``return_feat=True``).
        """
        feats = []
        h = x
        for block in self.input_blocks:
            h = block(h, emb)
            feats.append(h)
        feats.append(self.middle_block(h, emb))
        return feats

    def decode(self, feats: list[Tensor], emb: Tensor) -> Tensor:
        """Output blocks + ``out`` on the ``encode`` list (not modified) -> float [B, out, H, W]."""
        skips = list(feats[:-1])
        h = feats[-1]
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h)

    def forward(self, x: Tensor, gamma: Tensor) -> Tensor:
        """Predicted noise float [B, out_channel, H, W] for x [B, in_channel, H, W], gamma [B]."""
        emb = self.embed(gamma)
        return self.decode(self.encode(x, emb), emb)
