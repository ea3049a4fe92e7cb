"""Fidelity to the released code where l2l's paper sizes follow it (issue: loss fidelity)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from l2l.config import preset, replace
from l2l.models import build_model
from l2l.models import diffusion as palette
from l2l.models import mage
from l2l.unlearn.methods import _setup


def test_paper_mage_loss_is_the_cross_entropy_over_codebook_logits_only():
    assert mage.SIZES["base"].loss_logits == "codebook"
    assert mage.SIZES["tiny"].loss_logits == "vocab"  # the committed small runs' loss
    torch.manual_seed(0)
    model = mage.MAGE(dataclasses.replace(mage.SIZES["smoke"], loss_logits="codebook"))
    k, n = model.spec.codebook_size, model.spec.num_tokens
    logits = torch.randn(2, 1 + n, model.spec.vocab_size)
    target = torch.randint(0, k, (2, n))
    masked = torch.rand(2, n) < 0.5
    ls = model.spec.label_smoothing
    per = F.cross_entropy(logits[:, 1:, :k].reshape(-1, k), target.reshape(-1),
                          label_smoothing=ls, reduction="none")
    expected = (per * masked.view(-1)).sum() / masked.sum()
    assert model.forward_loss(logits, target, masked).item() == pytest.approx(expected.item(),
                                                                              rel=1e-6)
    full = mage.MAGE(mage.SIZES["smoke"]).forward_loss(logits, target, masked)
    assert full.item() > expected.item()  # more logits in the normaliser
    with pytest.raises(ValueError, match="loss_logits must be"):
        dataclasses.replace(mage.SIZES["smoke"], loss_logits="all")


def _dropouts(model):
    return {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}


@pytest.mark.parametrize("source,rate,teacher_training", [("real", 0.0, False),
                                                           ("proxy", 0.2, True)])
def test_palette_unlearning_dropout_follows_the_released_config(monkeypatch, source, rate,
                                                                teacher_training):
    spec = dataclasses.replace(palette.SIZES["smoke"], unlearn_dropout=(0.0, 0.2))
    model = palette.Palette(dataclasses.replace(
        spec, unet=dataclasses.replace(spec.unet, dropout=0.2)))
    cfg = replace(preset("smoke"), retain_source=source)
    student, _, teacher, _, _ = _setup(model, cfg, "encoder")
    assert _dropouts(student) == {rate} and _dropouts(teacher) == {rate}
    assert teacher.training is teacher_training
    assert _dropouts(model) == {0.2}  # the original is untouched
    assert palette.SIZES["places2"].unlearn_dropout == (0.0, 0.2)


def test_small_palette_keeps_its_own_dropout():
    model = build_model("diffusion", "tiny")
    student, _, teacher, _, _ = _setup(model, replace(preset("small"), retain_source="proxy"),
                                       "encoder")
    assert _dropouts(student) == {0.0} and not teacher.training


def test_released_weight_decay_groups_exempt_every_bias_at_paper_size():
    from l2l.train import adamw, released_no_decay

    assert mage.SIZES["base"].bias_no_decay and not mage.SIZES["tiny"].bias_no_decay
    for flag in (True, False):
        model = mage.MAGE(dataclasses.replace(mage.SIZES["smoke"], bias_no_decay=flag))
        opt = adamw(model.parameters(), lr=1e-3, weight_decay=0.05,
                    exempt=released_no_decay(model))
        decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
        assert (id(model.mlm_layer.bias) in decayed) is not flag  # shape [1, 1, V]: not 1-D
        assert id(model.mlm_layer.fc.weight) in decayed
        names = {id(p): n for n, p in model.named_parameters()}
        assert not any(names[i].endswith(".bias") for i in decayed) or not flag


# ----------------------------------------------------------------------------- generation as released
def test_paper_size_mage_generates_as_released_and_small_sizes_keep_their_paste():
    from l2l.models.mage import SIZES

    base = SIZES["base"]
    assert (base.decode_steps, base.choice_temperature) == (20, 6.0)
    assert (base.composite, base.blur_margin, base.blur_sigma, base.schedule_count) == \
        ("blurred", 14, 7.0, "all")
    for size in ("smoke", "tiny"):
        assert (SIZES[size].composite, SIZES[size].schedule_count) == ("paste", "masked")


def test_blurred_composite_blends_only_near_the_hole():
    from l2l.data import make_mask
    from l2l.models import build_model

    torch.manual_seed(0)
    model = build_model("vqgan", "smoke")
    model.spec = dataclasses.replace(model.spec, composite="blurred", blur_margin=2, blur_sigma=1.0)
    x, mask = torch.rand(2, 3, 32, 32), make_mask("centre_quarter", 32).expand(2, 1, 32, 32)
    out = model.complete(x, mask, generator=torch.Generator().manual_seed(0))
    far = torch.ones(32, 32, dtype=torch.bool)
    far[8:24, 8:24] = False  # hole 12..20, + 2 px margin + 2 sigma of blur
    assert torch.equal(out[..., far], x[..., far])
    assert (out[..., 12:20, 12:20] - x[..., 12:20, 12:20]).abs().mean() > 0.05


def test_blurred_mask_is_one_inside_the_hole_and_zero_far_away():
    from l2l.data import make_mask
    from l2l.models.mage import blurred_mask

    soft = blurred_mask(make_mask("centre_half", 256), 14, 7.0)
    assert soft.shape == (1, 1, 256, 256)
    assert soft[0, 0, 64:192, 64:192].min() > 0.99  # the hole (64..192) and beyond
    assert soft[0, 0, :30].max() == 0 and soft[0, 0, 128, 0] == 0
    assert 0 < soft[0, 0, 128, 64 - 14] < 1  # the dilated edge is blurred
