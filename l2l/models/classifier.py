"""The domain feature network: a small CNN whose embedding replaces Inception at small scale.

Inception-V3 (FID/IS) and CLIP ViT-H-14 (per-pair cosine) need downloads and 299/224 px inputs,
so at small scale every feature metric uses this classifier trained on the 32x32 photo set
(l2l's offline substitute, as in its CPU prototype). ``features`` plays the role of Inception's
2048-d pool features, ``forward`` the role of its class logits for IS.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# Fixed normalisation constants (not data statistics, so a checkpoint never depends on them).
MEAN, STD = 0.5, 0.25


def _block(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


class DomainClassifier(nn.Module):
    """Conv-BN-ReLU x 3 with pooling, global average pool, linear head.

    Resolution 32 -> 16 (strided stem) -> 8 -> 4 (max pools); the strided stem keeps a 600-step
    cross-entropy run at batch 128 to well under a minute on 2 CPU cores.

    Args:
        n_classes: number of classes K of the logits.
        feature_dim: size D of the embedding (channels of the last conv).
        width: channels of the first conv; the second has ``2 * width``.
    """

    def __init__(self, n_classes: int = 10, feature_dim: int = 128, width: int = 32) -> None:
        super().__init__()
        self.n_classes, self.feature_dim, self.width = n_classes, feature_dim, width
        self.body = nn.Sequential(
            *_block(3, width, stride=2), nn.MaxPool2d(2),  # [B, w, 8, 8]
            *_block(width, 2 * width), nn.MaxPool2d(2),  # [B, 2w, 4, 4]
            *_block(2 * width, feature_dim),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # [B, D]
        )
        self.head = nn.Linear(feature_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding float [B, D] (non-negative, post-ReLU like Inception's pool features).

        Args:
            x: float [B, 3, H, W] in [0, 1] (trained at H = W = 32).
        """
        return self.body((x - MEAN) / STD)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits float [B, K] for x float [B, 3, H, W] in [0, 1]."""
        return self.head(self.features(x))

    def provenance(self) -> dict[str, Any]:
        """What produced the features, for result sidecars."""
        return {"extractor": "domain", "architecture": "DomainClassifier",
                "feature_dim": self.feature_dim, "n_classes": self.n_classes, "width": self.width}
