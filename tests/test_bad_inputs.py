"""Bad input stops at the boundary with one clear line, before any compute (issue 16)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from l2l import config
from l2l.config import preset
from l2l.data import load_data, make_mask
from l2l.evaluation import complete
from l2l.models import build_model, model_for
from l2l.unlearn import unlearn


@pytest.fixture(scope="module")
def mae():
    torch.manual_seed(0)
    return build_model("mae", "smoke").eval()


def test_float_images_in_0_255_are_refused_by_complete_and_unlearn(mae):
    cfg = preset("smoke", device="cpu")
    x = torch.rand(4, 3, 32, 32) * 255
    with pytest.raises(ValueError, match=r"complete\(\): float images must lie in \[0, 1\].*"
                                         r"divide by 255"):
        complete(mae, x, make_mask("centre_half", 32), cfg)
    with pytest.raises(ValueError, match=r"unlearn\(\) forget set: float images .*divide by 255"):
        unlearn(mae, "li2024", forget=x, retain=x / 255, cfg=cfg)
    with pytest.raises(ValueError, match="NaN or inf"):
        complete(mae, torch.full((1, 3, 32, 32), math.nan), make_mask("centre_half", 32), cfg)


def test_images_of_the_wrong_size_or_shape_are_refused(mae):
    cfg = preset("smoke", device="cpu")
    with pytest.raises(ValueError, match="the model takes 32x32 images, got 64x64"):
        complete(mae, torch.rand(2, 3, 64, 64), make_mask("centre_half", 64), cfg)
    with pytest.raises(ValueError, match=r"must be \[N, 3, H, W\], got shape \(2, 32, 32\)"):
        unlearn(mae, "li2024", forget=torch.rand(2, 32, 32), retain=torch.rand(2, 32, 32), cfg=cfg)
    with pytest.raises(ValueError, match="takes 32-px images, but data.image_size is 31"):
        model_for(preset("smoke", image_size=31))


def test_untrained_models_are_never_made():
    from l2l.experiments.store import trained_generator

    cfg = preset("smoke", device="cpu", train__steps=0)
    images, split = load_data(cfg)
    with pytest.raises(ValueError, match="train.steps = 0: the retrain mae model would be untrained"):
        trained_generator(cfg, "retrain", images, split)
    with pytest.raises(ValueError, match="would be untrained"):
        trained_generator(config.for_family(preset("paper"), "mae"), "retrain", images, split)
    vq = preset("smoke", family="vqgan", train__tokenizer_steps=0)
    with pytest.raises(ValueError, match="tokenizer would be untrained"):
        trained_generator(vq, "original", images, split)


@pytest.mark.parametrize("override, message", [
    ({"alpha": math.inf}, "unlearn.alpha must be finite, got inf"),
    ({"alpha": math.nan}, "unlearn.alpha must be finite, got nan"),
    ({"seed": -1}, "seed must be an integer >= 0, got -1"),
    ({"forget_classes": ()}, "must each name at least one class"),
])
def test_bad_numbers_fail_validation(override, message):
    with pytest.raises(ValueError, match=message):
        preset("smoke", **override)


def test_fractional_integers_are_refused():
    with pytest.raises(TypeError, match="config field 'seed' takes an integer, got 1.5"):
        preset("smoke", seed=1.5)
    assert preset("smoke", seed=2.0).seed == 2 and isinstance(preset("smoke", seed=2.0).seed, int)


def test_cli_set_without_equals_is_one_line():
    done = subprocess.run([sys.executable, "-m", "l2l.cli", "unlearn", "--scale", "smoke",
                           "--set", "steps", "--out", "x.pt"], capture_output=True, text=True)
    assert done.returncode != 0
    assert "--set takes FIELD=VALUE (e.g. --set unlearn__steps=10), got 'steps'" in done.stderr
    assert "Traceback" not in done.stderr


def test_l2l_scale_override_is_said(monkeypatch):
    monkeypatch.setenv("L2L_SCALE", "smoke")
    with pytest.warns(UserWarning, match="L2L_SCALE=smoke overrides scale='small'"):
        assert preset("small").scale == "smoke"


def test_a_placed_retrain_checkpoint_is_the_paper_retrain_reference(tmp_path):
    from l2l.experiments.store import trained_generator
    from l2l.preflight import missing_inputs

    cfg = preset("smoke", device="cpu", data_root=str(tmp_path), train__steps=0,
                 retrain_checkpoint="checkpoints/retrain.pth")
    assert any("[retrain checkpoint: mae]" in p for p in missing_inputs(cfg, families=("mae",)))
    torch.manual_seed(5)
    placed = build_model("mae", "smoke")
    (tmp_path / "checkpoints").mkdir()
    torch.save({"model": placed.state_dict()}, tmp_path / "checkpoints" / "retrain.pth")
    images, split = load_data(cfg)
    model, hist = trained_generator(cfg, "retrain", images, split)
    assert hist.attrs["checkpoint"].endswith("retrain.pth") and hist.attrs["checkpoint_sha256"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  placed.state_dict().values()))
