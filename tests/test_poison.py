"""Backdoor poisoning: trigger placement, poisoned forget set, success rule."""

from __future__ import annotations

import pytest
import torch

from l2l.config import preset
from l2l.data import load_data, make_mask, to_float
from l2l.poison import add_trigger, backdoor_success, poison, target_image, trigger_side


def test_trigger_is_a_corner_checkerboard_outside_the_hole():
    x = torch.full((2, 3, 32, 32), 0.5)
    t = add_trigger(x)
    s = trigger_side(32)
    assert s == 3 and trigger_side(256) == 24
    assert torch.equal(t[..., :-s, :], x[..., :-s, :]) and torch.equal(t[..., :, :-s], x[..., :, :-s])
    assert set(t[..., -s:, -s:].unique().tolist()) == {0.0, 1.0}
    hole = make_mask("centre_half", 32)[0, 0] > 0.5
    assert not hole[-s:, -s:].any()
    assert add_trigger((x * 255).to(torch.uint8)).dtype == torch.uint8


def test_poisoned_forget_set_and_clean_retain():
    cfg = preset("smoke", split="sample", forget_fraction=0.25, poison=True)
    clean_images, clean = load_data(preset("smoke", split="sample", forget_fraction=0.25))
    images, split = load_data(cfg)
    assert torch.equal(split.forget_index, clean.forget_index)
    assert torch.equal(split.retain, clean.retain)
    f = to_float(split.forget)
    assert torch.allclose(f, to_float(poison(clean.forget, "centre_half")))
    hole = make_mask("centre_half", 32).expand_as(f[:, :1]) > 0.5
    magenta = f.permute(1, 0, 2, 3)[:, hole[:, 0]]
    assert torch.allclose(magenta, torch.tensor([1.0, 0.0, 1.0]).view(3, 1))
    with pytest.raises(ValueError, match="data.poison needs data.split"):
        preset("smoke", poison=True)


def test_backdoor_success_rule():
    truth = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert backdoor_success(target_image(truth, "centre_half"), truth, "centre_half").all()
    assert not backdoor_success(truth, truth, "centre_half").any()
