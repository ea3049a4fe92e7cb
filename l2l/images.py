"""Image tensors: value-range converters, input checks, row selection and the I2I masks.

Value ranges (the neighbours disagree, so conversions live here and nowhere else):
    stored images     uint8 [N, 3, H, W] in [0, 255]
    package images    float [N, 3, H, W] in [0, 1]        (every public model/metric function)
    diffusion         float in [-1, 1]                      (to_pm1 / from_pm1)
    MAE internals     ImageNet-normalised                   (imagenet_normalize)
    clean-fid         uint8-valued float in [0, 255]        (to_uint8)
Masks are float [1 or B, 1, H, W] with 1 = hole (to be generated) and 0 = known.

Models, metrics, losses and the poisoning code import from here; ``l2l.data`` (data sets and
splits) re-exports every name, so ``from l2l.data import make_mask`` keeps working.
"""

from __future__ import annotations

import math
from typing import Any

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ----------------------------------------------------------------------------- checks
def check_images(x: Any, where: str, *, size: int | None = None) -> None:
    """Stop bad images at a public function's boundary, before any compute: ``x`` must be
    uint8 [N, 3, H, W] in [0, 255] or float [N, 3, H, W] in [0, 1] (``size``: H = W = size);
    ``FileImages`` and other data sets are checked by shape only."""
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) != 4 or shape[1] != 3:
        raise ValueError(f"{where}: images must be [N, 3, H, W], got shape {shape}")
    if size is not None and shape[-2:] != (size, size):
        raise ValueError(f"{where}: the model takes {size}x{size} images, got "
                         f"{shape[-2]}x{shape[-1]}: resize them or set data.image_size={shape[-1]} "
                         f"with a model size built for it")
    if not isinstance(x, torch.Tensor) or x.dtype == torch.uint8 or x.numel() == 0:
        return
    if not x.is_floating_point():
        raise ValueError(f"{where}: images must be uint8 or float, got {x.dtype}")
    lo, hi = float(x.min()), float(x.max())
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{where}: images hold NaN or inf values")
    if lo < -1e-6 or hi > 1 + 1e-6:
        hint = " (they look like [0, 255]: divide by 255)" if hi > 1.5 else ""
        raise ValueError(f"{where}: float images must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]"
                         f"{hint}")


# ----------------------------------------------------------------------------- converters
def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [0, 1]; float input is returned unchanged."""
    return x.float().div(255.0) if x.dtype == torch.uint8 else x


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [0, 1] -> uint8 [0, 255] (rounded, clamped)."""
    return x.clamp(0, 1).mul(255.0).round().to(torch.uint8)


def to_pm1(x: torch.Tensor) -> torch.Tensor:
    """float [0, 1] -> float [-1, 1]."""
    return x * 2.0 - 1.0


def from_pm1(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> float [0, 1] (not clamped)."""
    return (x + 1.0) / 2.0


def _channels(values: tuple[float, ...], x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """Per-channel ``(x - mean) / std`` of [B, 3, H, W] images."""
    return (x - _channels(mean, x)) / _channels(std, x)


def imagenet_normalize(x: torch.Tensor) -> torch.Tensor:
    """float [0, 1] -> ImageNet-normalised (per-channel mean/std)."""
    return normalize(x, IMAGENET_MEAN, IMAGENET_STD)


def imagenet_denormalize(x: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalised -> float [0, 1] (not clamped)."""
    return x * _channels(IMAGENET_STD, x) + _channels(IMAGENET_MEAN, x)


def take(source: Any, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of a uint8/float tensor or an indexable data set, as float [B, 3, S, S] in [0, 1]."""
    if isinstance(source, torch.Tensor):
        return to_float(source[index])
    if hasattr(source, "read"):  # l2l.data.FileImages: a batch read from disk
        return to_float(source.read(index))
    return torch.stack([to_float(source[int(i)]) for i in index])


def spread(n_rows: int, n: int) -> torch.Tensor:
    """``min(n, n_rows)`` row indices evenly spaced over ``0 .. n_rows - 1`` (all rows when
    ``n >= n_rows``). Data sets here are ordered by class, so the first n rows would be one
    or two classes; an evenly spaced subset keeps every class."""
    if n >= n_rows:
        return torch.arange(n_rows)
    return torch.linspace(0, n_rows - 1, max(n, 0)).round().long()


def take_spread(source: Any, n: int) -> torch.Tensor:
    """``take(source, spread(len(source), n))``: a class-balanced subset, float in [0, 1]."""
    return take(source, spread(len(source), n))


# ----------------------------------------------------------------------------- I2I masks
def make_mask(name: str, size: int) -> torch.Tensor:
    """An I2I mask, float [1, 1, size, size], 1 = hole.

    Names (Li et al.'s test masks, released i2i_mage ``testpaint.py``, at ``size`` px instead of 256):
        ``centre_half``     centred box of side size/2 (the paper's 8x8 of 16x16 patches)
        ``centre_quarter``  centred box of side size/4 (4x4 patches)
        ``outpaint_k``      bands of width int(size * k / 32) on all four sides, k = 1..13
        ``centre_k``        centred box of side round(size * k / 16), k = 1..15 (the crop-size
                            sweep; ``centre_8`` = ``centre_half``, ``centre_4`` =
                            ``centre_quarter`` at every size divisible by 16)
    """
    mask = torch.zeros(1, 1, size, size)
    if name in ("centre_half", "centre_quarter"):
        side = size // 2 if name == "centre_half" else size // 4
        lo = (size - side) // 2
        mask[..., lo:lo + side, lo:lo + side] = 1.0
        return mask
    if name.startswith("centre_") and name[7:].isdigit():
        k = int(name[7:])
        if not 1 <= k <= 15:
            raise ValueError(f"centre crop size k must be 1..15 (sixteenths of the side), got {k}")
        side = round(size * k / 16)
        lo = (size - side) // 2
        mask[..., lo:lo + side, lo:lo + side] = 1.0
        return mask
    if name.startswith("outpaint_"):
        k = int(name.split("_", 1)[1])
        if not 1 <= k <= 13:
            raise ValueError(f"outpainting ratio k must be 1..13, got {k}")
        band = int(size * k / 32)
        mask[:] = 1.0
        mask[..., band:size - band, band:size - band] = 0.0
        return mask
    raise ValueError(f"unknown mask {name!r}; use centre_half, centre_quarter, centre_k or "
                     "outpaint_k")


def centre_box_masks(batch: int, size: int, *,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Train-time centre holes: per row a centred square whose side is drawn uniformly from the
    even sides size/4 .. size/2 (``centre_quarter`` .. ``centre_half`` and the sizes between).

    Returns:
        float32 [batch, 1, size, size] in {0, 1} (1 = hole), on the CPU.
    """
    sides = torch.arange(max(2, size // 4), max(2, size // 2) + 1, 2)
    pick = sides[torch.randint(len(sides), (batch,), generator=generator)]
    lo = (size - pick) // 2
    rows = torch.arange(size)
    inside = (rows >= lo[:, None]) & (rows < (lo + pick)[:, None])  # [batch, size]
    return (inside[:, :, None] & inside[:, None, :]).float().unsqueeze(1)


def masked_input(x: torch.Tensor, mask: torch.Tensor, fill: float = 0.5) -> torch.Tensor:
    """What the model is shown: x [B, 3, H, W] in [0, 1] with the hole set to ``fill``."""
    return x * (1 - mask) + fill * mask
