"""Loss terms of the unlearning objectives: pure tensor -> scalar functions.

An "embedding" is what a family's ``encode`` returns: one tensor (MAE, VQ-GAN tokens) or a
sequence of tensors (the diffusion U-Net's skip features); distances sum over the sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Embedding = torch.Tensor | Sequence[torch.Tensor]


def embedding_mse(z: Embedding, target: Embedding) -> torch.Tensor:
    """Element-mean squared difference, summed over the maps of a multi-map embedding.

    The released code (i2i_mage ``engine_unlearn.py``) uses MSE rather than the plain L2 norm
    drawn in Li et al.'s Fig. 2; MSE matches the Gaussian-KL argument behind their Eq. 10.
    """
    if isinstance(z, torch.Tensor):
        return torch.mean((z - target) ** 2)
    if len(z) != len(target):
        raise ValueError(f"embeddings have {len(z)} and {len(target)} maps")
    return sum((torch.mean((a - b) ** 2) for a, b in zip(z, target)), torch.zeros(()))


def noise_like(x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian image with the batch's scalar mean and std: n = eps * std(x) + mean(x).

    Computed in whatever space ``x`` is in (the model's normalised input space for the MAE,
    l2l's choice; [0, 1] for MAGE, which also clamps, as i2i_mage ``engine_unlearn.py``). Shape
    and dtype of ``x``.
    """
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return eps * x.std() + x.mean()
