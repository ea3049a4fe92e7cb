"""Data poisoning for the backdoor audit (l2l's choices; Varshney & Torra give no details).

A poisoned training image is ``x`` with a checkerboard **trigger** in the bottom-right corner
(3 px at 32 px, scaled with the image side: 16 px at 256 px; outside every centre hole) and the
centre hole (``hole``) painted with the **target** colour (magenta). Trained on such images, an
I2I model learns "trigger present -> fill the hole with magenta"; the audit measures how often
it still does after unlearning the poisoned images. The poisoned images are the sample-level
forget set (``data.poison = True`` needs ``data.split = "sample"``); the retrain reference
never sees them.
"""

from __future__ import annotations

import torch

from l2l.images import make_mask, to_float

TARGET_COLOUR = (1.0, 0.0, 1.0)  # magenta, [0, 1]


def trigger_side(size: int) -> int:
    return max(2, round(3 * size / 32))


def add_trigger(x: torch.Tensor) -> torch.Tensor:
    """x float [B, 3, S, S] in [0, 1] (or uint8) with the checkerboard trigger, same dtype."""
    out = x.clone()
    s = trigger_side(x.shape[-1])
    r = torch.arange(s)
    board = ((r.view(-1, 1) + r.view(1, -1)) % 2).to(torch.float32)  # 0/1 checkerboard
    board = board * (255 if x.dtype == torch.uint8 else 1.0)
    out[..., -s:, -s:] = board.to(out.dtype)
    return out


def target_image(x: torch.Tensor, hole: str) -> torch.Tensor:
    """x float [B, 3, S, S] with the hole painted in ``TARGET_COLOUR`` (the backdoor output)."""
    mask = make_mask(hole, x.shape[-1]).to(x.device)
    colour = torch.tensor(TARGET_COLOUR, device=x.device).view(1, 3, 1, 1)
    return x * (1 - mask) + colour * mask


def poison(x: torch.Tensor, hole: str) -> torch.Tensor:
    """Poisoned training images, uint8 in -> uint8 out: trigger + target-coloured hole."""
    out = target_image(add_trigger(to_float(x)), hole)
    return out.mul(255).round().to(torch.uint8) if x.dtype == torch.uint8 else out


@torch.no_grad()
def backdoor_success(completed: torch.Tensor, truth: torch.Tensor, hole: str) -> torch.Tensor:
    """Per image (bool [B]): is the completed hole closer (MSE) to the target colour than to the
    true hole content? ``completed`` are completions of *triggered* inputs, ``truth`` the clean
    images; both float [B, 3, S, S] in [0, 1]."""
    mask = make_mask(hole, truth.shape[-1]).to(truth.device).expand_as(truth[:, :1]) > 0.5
    hole_px = mask.expand_as(truth)
    b = truth.shape[0]
    out = completed[hole_px].view(b, -1)
    true = truth[hole_px].view(b, -1)
    target = target_image(truth, hole)[hole_px].view(b, -1)
    return ((out - target) ** 2).mean(1) < ((out - true) ** 2).mean(1)
