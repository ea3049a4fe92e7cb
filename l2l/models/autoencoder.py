"""Convolutional AutoEncoder of the Varshney & Torra CIFAR-10 study (l2l's design).

Encoder 3 -> 32 -> 64 -> 128 channels with 4x4 stride-2 convolutions (32 -> 16 -> 8 -> 4 px),
bottleneck 128 x 4 x 4, mirrored transposed-convolution decoder, sigmoid output in [0, 1].
No normalisation layers: no running statistics that train-mode unlearning passes could shift.
The I2I task tau is the centre mask filled with 0.5 (``train_mask="centre_half"``), a centred
square of a random size from centre_quarter to centre_half per sample (``"centre_boxes"``, the
small-scale size), or the identity (``train_mask="none"``, plain reconstruction); the loss is the
full-image pixel MSE.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from l2l.images import centre_box_masks, make_mask, masked_input

OptGenerator = torch.Generator | None


@dataclass(frozen=True)
class AESpec:
    """Image size, the three encoder widths and the training-time mask (a ``make_mask`` name,
    ``"centre_boxes"`` or ``"none"``)."""

    img_size: int = 32
    widths: tuple[int, int, int] = (32, 64, 128)
    train_mask: str = "centre_half"


SIZES = {
    "smoke": AESpec(widths=(8, 8, 16)),
    "cifar10": AESpec(),  # l2l's CIFAR-10 architecture (paper scale)
    # small scale: the same network trained on centre holes of every size from centre_quarter to
    # centre_half (trained on centre_half alone it filled the quarter hole worse than the mean
    # colour). Chosen on fresh crops of the training photos (500 forget + 500 retain, the test
    # tiles unused), recipe FAMILY_RECIPES["small"]["autoencoder"] (4000 steps): worst hole-FID
    # ratio to the per-image mean fill over {centre_half, centre_quarter} x {forget, retain}
    # 0.49; 800 steps: 3.68 (centre_half only, 800 steps: 5.64). The FID of this deterministic
    # fill falls with training long after its hole MSE has (0.5x the mean fill's at 800 steps).
    "small": AESpec(train_mask="centre_boxes"),
}


def _down(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.ReLU(inplace=True)]


def _up(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.ReLU(inplace=True)]


class AutoEncoder(nn.Module):
    """Masked-input autoencoder with the package's I2I interface.

    Images float [B, 3, H, W] in [0, 1]; masks float [B or 1, 1, H, W] with 1 = hole, or
    ``None`` for the identity task.
    """

    family = "autoencoder"

    def __init__(self, spec: AESpec) -> None:
        super().__init__()
        self.spec = spec
        w1, w2, w3 = spec.widths
        self.encoder = nn.Sequential(*_down(3, w1), *_down(w1, w2), *_down(w2, w3))
        self.decoder = nn.Sequential(*_up(w3, w2), *_up(w2, w1),
                                     nn.ConvTranspose2d(w1, 3, 4, 2, 1), nn.Sigmoid())

    def _tau(self, x: Tensor, mask: Tensor | None) -> Tensor:
        return x if mask is None else masked_input(x, mask, fill=0.5)

    def encode(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Bottleneck z float [B, w3, H/8, W/8] of tau(x)."""
        return self.encoder(self._tau(x, mask))

    def decode(self, z: Tensor, mask: Tensor | None = None) -> Tensor:
        """Full reconstructed image float [B, 3, H, W] in [0, 1] (``mask`` unused)."""
        del mask
        return self.decoder(z)

    def complete(self, x: Tensor, mask: Tensor, *, generator: OptGenerator = None) -> Tensor:
        """x outside the hole (bit-exact), the reconstruction inside; deterministic."""
        del generator
        hole = mask.expand(len(x), 1, *x.shape[-2:]) > 0.5
        return torch.where(hole, self.decode(self.encode(x, mask)), x)

    def sample_mask(self, batch: int, *, generator: OptGenerator = None,
                    device: torch.device | str | None = None) -> Tensor | None:
        """The training-time tau: centre masks [B, 1, H, W] (fixed, or of random sizes drawn
        from ``generator`` for ``"centre_boxes"``), or None (identity)."""
        if self.spec.train_mask == "none":
            return None
        device = device or self.decoder[0].weight.device
        if self.spec.train_mask == "centre_boxes":
            return centre_box_masks(batch, self.spec.img_size, generator=generator).to(device)
        mask = make_mask(self.spec.train_mask, self.spec.img_size)
        return mask.expand(batch, 1, -1, -1).to(device)

    def reconstruction_error(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Per-image full-image MSE float [B] of decode(encode(tau(x))) against x."""
        return ((self.decode(self.encode(x, mask)) - x) ** 2).flatten(1).mean(1)

    def training_loss(self, x: Tensor, *, generator: OptGenerator = None) -> Tensor:
        """Full-image pixel MSE of the reconstruction of tau(x) against x."""
        mask = self.sample_mask(len(x), generator=generator, device=x.device)
        return self.reconstruction_error(x, mask).mean()

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def decoder_parameters(self) -> list[nn.Parameter]:
        return list(self.decoder.parameters())


def build_autoencoder(size: str, **overrides: object) -> AutoEncoder:
    """A freshly initialised AutoEncoder of a named size (``smoke``, ``cifar10`` or ``small``)."""
    if size not in SIZES:
        raise ValueError(f"unknown autoencoder size {size!r}; known sizes: {', '.join(SIZES)}")
    return AutoEncoder(dataclasses.replace(SIZES[size], **overrides))
