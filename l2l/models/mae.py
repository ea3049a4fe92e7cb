"""Masked Autoencoder (He et al. 2022): a self-contained ViT MAE with the official weight layout.

The module tree and ``state_dict`` keys match facebookresearch/mae ``MaskedAutoencoderViT``, so the
released ``mae_visualize_vit_{base,large}[_ganloss].pth`` checkpoints load with
``model.load_state_dict(ckpt["model"], strict=True)``. Public methods take images in [0, 1]; the
model normalises with ImageNet statistics inside and predicts pixels in that normalised space
(``norm_pix_loss=False``, the target of the visualisation checkpoints).

Masks: a *patch mask* is bool [B, L] (True = removed, patches in row-major order); a *pixel mask*
is float [B, 1, H, W] in {0, 1} (1 = hole). Every row of a batch must remove the same number of
patches, because the encoder sees a dense [B, K, D] tensor of kept tokens.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from l2l.models.vit import LN_EPS, Block, PatchEmbed, sincos_pos_embed_2d

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
OptGenerator = torch.Generator | None


@dataclass(frozen=True)
class MAESpec:
    """Architecture of one MAE size (square images, ``img_size`` divisible by ``patch_size``)."""

    img_size: int
    patch_size: int
    embed_dim: int
    depth: int
    num_heads: int
    decoder_embed_dim: int
    decoder_depth: int
    decoder_num_heads: int
    mlp_ratio: float = 4.0
    in_chans: int = 3

    def __post_init__(self) -> None:
        if self.img_size % self.patch_size:
            raise ValueError(f"img_size {self.img_size} is not a multiple of {self.patch_size}")
        widths = (self.embed_dim, self.num_heads), (self.decoder_embed_dim, self.decoder_num_heads)
        for dim, heads in widths:
            # the 2D sin-cos embedding splits the width in four (sin/cos x column/row)
            if dim % heads or dim % 4:
                raise ValueError(f"width {dim} must be divisible by 4 and by its {heads} heads")

    @property
    def grid_size(self) -> int:
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2


SIZES: dict[str, MAESpec] = {
    "smoke": MAESpec(32, 4, 32, 1, 2, 32, 1, 2),
    "tiny": MAESpec(32, 4, 128, 4, 4, 64, 2, 4),
    "base": MAESpec(224, 16, 768, 12, 12, 512, 8, 16),  # mae_vit_base_patch16_dec512d8b
    "large": MAESpec(224, 16, 1024, 24, 16, 512, 8, 16),  # mae_vit_large_patch16_dec512d8b
}


class MAE(nn.Module):
    """ViT masked autoencoder; see the module docstring for value ranges and mask conventions."""

    family = "mae"

    def __init__(self, spec: MAESpec) -> None:
        super().__init__()
        self.spec = s = spec
        # encoder
        self.patch_embed = PatchEmbed(s.patch_size, s.in_chans, s.embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, s.embed_dim))
        # fixed sin-cos tables: buffers (never trained) under the official keys
        self.register_buffer("pos_embed", sincos_pos_embed_2d(s.embed_dim, s.grid_size)[None])
        enc = (s.embed_dim, s.num_heads, s.mlp_ratio)
        self.blocks = nn.ModuleList(Block(*enc) for _ in range(s.depth))
        self.norm = nn.LayerNorm(s.embed_dim, eps=LN_EPS)
        # decoder
        self.decoder_embed = nn.Linear(s.embed_dim, s.decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, s.decoder_embed_dim))
        dec_pos = sincos_pos_embed_2d(s.decoder_embed_dim, s.grid_size)[None]
        self.register_buffer("decoder_pos_embed", dec_pos)
        dec = (s.decoder_embed_dim, s.decoder_num_heads, s.mlp_ratio)
        self.decoder_blocks = nn.ModuleList(Block(*dec) for _ in range(s.decoder_depth))
        self.decoder_norm = nn.LayerNorm(s.decoder_embed_dim, eps=LN_EPS)
        self.decoder_pred = nn.Linear(s.decoder_embed_dim, s.patch_size**2 * s.in_chans)
        # normalisation constants: not part of the checkpoint layout
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        self.register_buffer("_mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", std.view(1, 3, 1, 1), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        # official recipe: the patch conv is initialised as the Linear it is (flattened view)
        w = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


    def normalize(self, x: Tensor) -> Tensor:
        """float [B, 3, H, W] in [0, 1] -> ImageNet-normalised (about [-2.1, 2.6])."""
        return (x - self._mean) / self._std

    def denormalize(self, x: Tensor) -> Tensor:
        """ImageNet-normalised [B, 3, H, W] -> [0, 1] space (not clamped)."""
        return x * self._std + self._mean

    def patchify(self, imgs: Tensor) -> Tensor:
        """[B, C, H, W] -> [B, L, p*p*C]: patches row-major, pixels in official (p, q, c) order."""
        p, g = self.spec.patch_size, self.spec.grid_size
        b, c = imgs.shape[:2]
        x = imgs.reshape(b, c, g, p, g, p).permute(0, 2, 4, 3, 5, 1)  # nchpwq -> nhwpqc
        return x.reshape(b, g * g, p * p * c)

    def unpatchify(self, x: Tensor) -> Tensor:
        """[B, L, p*p*C] -> [B, C, H, W]; the exact inverse of ``patchify``."""
        p, g, c = self.spec.patch_size, self.spec.grid_size, self.spec.in_chans
        b = x.shape[0]
        x = x.reshape(b, g, g, p, p, c).permute(0, 5, 1, 3, 2, 4)  # nhwpqc -> nchpwq
        return x.reshape(b, c, g * p, g * p)


    def _noise(self, b: int, generator: OptGenerator, device: torch.device) -> Tensor:
        # draw on the generator's device so that a CPU generator also drives a CUDA model
        where = generator.device if generator is not None else device
        return torch.rand(b, self.spec.num_patches, generator=generator, device=where).to(device)

    def _len_keep(self, mask_ratio: float) -> int:
        if not 0.0 <= mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio must be in [0, 1], got {mask_ratio}")
        return int(self.spec.num_patches * (1 - mask_ratio))  # official rounding

    def random_masking(
        self, x: Tensor, mask_ratio: float, *, generator: OptGenerator = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Official per-sample random masking: argsort of uniform noise, small noise = kept.

        Args:
            x: float [B, L, D] token sequence.
            mask_ratio: share removed, in [0, 1]; K = int(L * (1 - mask_ratio)) tokens kept.

        Returns:
            x_kept [B, K, D] (in noise order), mask float [B, L] (0 keep, 1 remove),
            ids_restore long [B, L] (gather index into cat(x_kept, removed) -> patch order).
        """
        b, n, d = x.shape
        keep = self._len_keep(mask_ratio)
        ids_shuffle = torch.argsort(self._noise(b, generator, x.device), dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        x_kept = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, d))
        mask = torch.ones(b, n, device=x.device)
        mask[:, :keep] = 0
        return x_kept, torch.gather(mask, 1, ids_restore), ids_restore

    def random_patch_mask(
        self, batch: int, mask_ratio: float, *, generator: OptGenerator = None,
        device: torch.device | str | None = None,
    ) -> Tensor:  # fmt: skip
        """Random bool [B, L] patch mask (True = removed): same draw and K as ``random_masking``."""
        device = torch.device(device) if device is not None else self.cls_token.device
        keep = self._len_keep(mask_ratio)
        ids_shuffle = torch.argsort(self._noise(batch, generator, device), dim=1)
        mask = torch.ones(batch, self.spec.num_patches, dtype=torch.bool, device=device)
        return mask.scatter(1, ids_shuffle[:, :keep], False)

    @staticmethod
    def _check_equal_counts(mask: Tensor) -> int:
        """Number of removed patches per row; ValueError if rows differ."""
        counts = mask.sum(dim=1)
        if (counts != counts[0]).any():
            raise ValueError(
                f"mask rows remove different numbers of patches {counts.tolist()}; the MAE encoder "
                "needs the same count in every row (use holes with the same patch footprint)"
            )
        return int(counts[0])

    def patch_mask(self, pixel_mask: Tensor) -> Tensor:
        """Pixel mask float [B, 1, H, W] (1 = hole) -> bool [B, L] patch mask (True = removed).

        A patch is removed if any of its pixels is in the hole.
        """
        size, p = self.spec.img_size, self.spec.patch_size
        if pixel_mask.ndim != 4 or tuple(pixel_mask.shape[1:]) != (1, size, size):
            shape = list(pixel_mask.shape)
            raise ValueError(f"pixel mask must be [B, 1, {size}, {size}], got {shape}")
        mask = F.max_pool2d(pixel_mask.float(), p, p).flatten(1) > 0.5
        if self._check_equal_counts(mask) == self.spec.num_patches:
            raise ValueError("the hole covers every patch: the encoder would see no visible patch")
        return mask

    def _as_patch_mask(self, mask: Tensor) -> Tensor:
        """Pixel mask [B, 1, H, W] or patch mask [B, L] (bool or 0/1) -> bool [B, L]."""
        if mask.ndim == 4:
            return self.patch_mask(mask)
        if mask.ndim != 2 or mask.shape[1] != self.spec.num_patches:
            n = self.spec.num_patches
            raise ValueError(f"expected a [B, 1, H, W] pixel mask or a [B, {n}] patch mask")
        return mask if mask.dtype == torch.bool else mask > 0.5

    @staticmethod
    def ids_restore_from_mask(mask: Tensor) -> Tensor:
        """bool [B, L] -> long [B, L]: inverse of the stable order "kept patches, then removed"."""
        ids_shuffle = torch.argsort(mask.to(torch.uint8), dim=1, stable=True)
        return torch.argsort(ids_shuffle, dim=1)


    def forward_encoder(self, x: Tensor, mask: Tensor) -> Tensor:
        """Encode the visible patches of x float [B, 3, H, W] in [0, 1].

        ``mask`` is bool [B, L] (True = removed) with the same count R in every row. Returns z float
        [B, 1 + K, D], K = L - R: the cls token, then the kept patches in increasing patch order.
        """
        removed = self._check_equal_counts(mask)
        tokens = self.patch_embed(self.normalize(x)) + self.pos_embed[:, 1:]
        order = torch.argsort(mask.to(torch.uint8), dim=1, stable=True)  # kept first, in order
        ids_keep = order[:, : self.spec.num_patches - removed, None]
        tokens = torch.gather(tokens, 1, ids_keep.expand(-1, -1, tokens.shape[-1]))
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(tokens.shape[0], -1, -1)
        z = torch.cat([cls, tokens], dim=1)
        for blk in self.blocks:
            z = blk(z)
        return self.norm(z)

    def forward_decoder(self, z: Tensor, mask: Tensor) -> Tensor:
        """Predict every patch from z [B, 1 + K, D] (``forward_encoder`` with the same mask).

        Returns pred float [B, L, p*p*3] in ImageNet-normalised pixel space.
        """
        y = self.decoder_embed(z)
        b, n = mask.shape
        ids_restore = self.ids_restore_from_mask(mask)
        seq = torch.cat([y[:, 1:], self.mask_token.expand(b, n + 1 - y.shape[1], -1)], dim=1)
        seq = torch.gather(seq, 1, ids_restore[..., None].expand(-1, -1, y.shape[-1]))
        y = torch.cat([y[:, :1], seq], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            y = blk(y)
        return self.decoder_pred(self.decoder_norm(y))[:, 1:]

    def forward_loss(self, x: Tensor, pred: Tensor, mask: Tensor) -> Tensor:
        """Official MAE loss: per-patch MSE in normalised space, averaged over removed patches.

        Args:
            x: float [B, 3, H, W] in [0, 1]; pred: [B, L, p*p*3]; mask: [B, L] bool or 0/1.
        """
        per_patch = ((pred - self.patchify(self.normalize(x))) ** 2).mean(dim=-1)
        mask = mask.to(per_patch.dtype)
        return (per_patch * mask).sum() / mask.sum()

    def forward(
        self, x: Tensor, mask_ratio: float = 0.75, *, generator: OptGenerator = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Official-style step: random mask -> encode -> decode -> loss.

        Returns:
            loss (scalar), pred [B, L, p*p*3] (normalised space), mask float [B, L] (1 = removed).
        """
        b = x.shape[0]
        mask = self.random_patch_mask(b, mask_ratio, generator=generator, device=x.device)
        pred = self.forward_decoder(self.forward_encoder(x, mask), mask)
        return self.forward_loss(x, pred, mask), pred, mask.float()


    def encode(self, x: Tensor, mask: Tensor) -> Tensor:
        """Embedding of x [B, 3, H, W] in [0, 1]: ``forward_encoder`` output [B, 1 + K, D].

        ``mask`` is a pixel mask float [B, 1, H, W] (1 = hole) or a bool patch mask [B, L].
        """
        return self.forward_encoder(x, self._as_patch_mask(mask))

    def decode(self, z: Tensor, mask: Tensor) -> Tensor:
        """Full predicted image [B, 3, H, W] in [0, 1] space (denormalised, not clamped)."""
        pred = self.forward_decoder(z, self._as_patch_mask(mask))
        return self.denormalize(self.unpatchify(pred))

    def complete(self, x: Tensor, mask: Tensor, *, generator: OptGenerator = None) -> Tensor:
        """Inpaint the hole in one pass: x outside the hole, the prediction inside.

        Args:
            x: float [B, 3, H, W] in [0, 1].
            mask: pixel mask float [B, 1, H, W] (1 = hole) or bool patch mask [B, L]; a batch
                of one is used for every image.
            generator: unused (MAE completion is deterministic); kept for the shared interface.

        Returns:
            float [B, 3, H, W] in [0, 1]; pixels outside the hole equal ``x`` exactly.
        """
        del generator
        if len(mask) != len(x):  # one mask for the whole batch, or one per image
            if len(mask) != 1:
                raise ValueError(f"mask batch {len(mask)} does not match the image batch {len(x)}")
            mask = mask.expand(len(x), *mask.shape[1:])
        patches = self._as_patch_mask(mask)
        if mask.ndim == 4:
            hole = mask > 0.5
        else:  # patch mask -> a pixel hole of whole patches
            p, g = self.spec.patch_size, self.spec.grid_size
            hole = patches.view(-1, 1, g, g).repeat_interleave(p, 2).repeat_interleave(p, 3)
        pred = self.decode(self.forward_encoder(x, patches), patches)
        return torch.where(hole, pred.clamp(0, 1), x)

    def training_loss(
        self, x: Tensor, *, mask_ratio: float = 0.75, generator: OptGenerator = None
    ) -> Tensor:
        """MAE pre-training loss of a [0, 1] batch under random masking at ``mask_ratio``."""
        return self.forward(x, mask_ratio, generator=generator)[0]

    def encoder_parameters(self) -> list[nn.Parameter]:
        """patch_embed, cls_token, blocks, norm."""
        parts = [self.patch_embed, self.blocks, self.norm]
        return [self.cls_token] + [p for m in parts for p in m.parameters()]

    def decoder_parameters(self) -> list[nn.Parameter]:
        """decoder_embed, mask_token, decoder_blocks, decoder_norm, decoder_pred."""
        parts = [self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred]
        return [self.mask_token] + [p for m in parts for p in m.parameters()]


def build_mae(size: str, **overrides: int | float) -> MAE:
    """A freshly initialised MAE of a named size; ``overrides`` replace ``MAESpec`` fields.

    Raises:
        ValueError: unknown ``size`` (the message lists the known ones).
        TypeError: an override that is not a ``MAESpec`` field.
    """
    if size not in SIZES:
        raise ValueError(f"unknown MAE size {size!r}; known sizes: {', '.join(SIZES)}")
    return MAE(dataclasses.replace(SIZES[size], **overrides))
