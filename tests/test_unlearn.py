import pytest
import torch

from l2l.config import preset
from l2l.losses import embedding_mse, noise_like
from l2l.models import build_model
from l2l.schedule import lr_at
from l2l.train import train_generator
from l2l.unlearn import HISTORY_COLUMNS, frozen_copy, noise_image, unlearn


@pytest.fixture(scope="module")
def data():
    gen = torch.Generator().manual_seed(0)
    forget = (torch.rand(32, 3, 32, 32, generator=gen) * 255).to(torch.uint8)
    retain = (torch.rand(32, 3, 32, 32, generator=gen) * 128).to(torch.uint8)
    return forget, retain


@pytest.fixture(scope="module")
def original():
    torch.manual_seed(0)
    return build_model("mae", "smoke").eval()


def _snapshot(params):
    return [p.detach().clone() for p in params]


def test_embedding_mse_handles_lists():
    a, b = torch.ones(2, 3), torch.zeros(2, 3)
    assert embedding_mse(a, b) == 1.0
    assert embedding_mse([a, a], [b, b]) == 2.0  # summed over maps
    with pytest.raises(ValueError, match="maps"):
        embedding_mse([a], [b, b])


def test_noise_matches_batch_statistics():
    x = torch.rand(64, 3, 16, 16) * 0.5 + 0.2
    n = noise_like(x, generator=torch.Generator().manual_seed(0))
    assert n.shape == x.shape
    assert abs(n.mean() - x.mean()) < 0.01 and abs(n.std() - x.std()) / x.std() < 0.02


def test_mae_noise_image_in_normalised_space(original):
    x = torch.rand(16, 3, 32, 32)
    n = original.normalize(noise_image(original, x, torch.Generator().manual_seed(0)))
    xn = original.normalize(x)
    assert abs(n.mean() - xn.mean()) < 0.05 and abs(n.std() - xn.std()) / xn.std() < 0.05


def test_li2024_lowers_objective_and_touches_encoder_only(original, data):
    forget, retain = data
    cfg = preset("smoke", unlearn__steps=30, unlearn__lr=1e-3, log_every=1, unlearn__warmup=0.0,
                 alpha=1.0)
    before = {k: v.clone() for k, v in original.state_dict().items()}
    dec_ids = {id(p) for p in original.decoder_parameters()}
    model, hist = unlearn(original, "li2024", forget=forget, retain=retain, cfg=cfg, progress=False)
    assert list(hist.columns) == HISTORY_COLUMNS and set(hist["stage"]) == {"li2024"}
    assert len(hist) == 30
    assert hist["loss"].iloc[-5:].mean() < hist["loss"].iloc[:5].mean()
    # the original is untouched
    for k, v in original.state_dict().items():
        assert torch.equal(v, before[k]), k
    # decoder bit-identical, encoder moved
    new = dict(model.named_parameters())
    for name, p in original.named_parameters():
        if id(p) in dec_ids:
            assert torch.equal(new[name], p), name
    enc_moved = [not torch.equal(a, b) for a, b in zip(model.encoder_parameters(),
                                                        original.encoder_parameters())]
    assert any(enc_moved)
    assert model is not original and not model.training


def test_unlearn_centre_mask_runs(original, data):
    forget, retain = data
    cfg = preset("smoke", mask="centre")
    _, hist = unlearn(original, "li2024", forget=forget, retain=retain, cfg=cfg, progress=False)
    assert hist["loss"].notna().all()


def test_unlearn_bad_inputs(original, data):
    forget, retain = data
    cfg = preset("smoke")
    with pytest.raises(ValueError, match="unknown unlearning method 'magic'"):
        unlearn(original, "magic", forget=forget, retain=retain, cfg=cfg)
    with pytest.raises(ValueError, match="the forget set is empty"):
        unlearn(original, "li2024", forget=forget[:0], retain=retain, cfg=cfg)


def test_nan_loss_stops_with_a_clear_error(data):
    forget, _ = data
    torch.manual_seed(0)
    model = build_model("mae", "smoke")
    cfg = preset("smoke", train__lr=1e30, train__steps=50, train__warmup=0.0)
    with pytest.raises(FloatingPointError, match="loss is (nan|inf) at step"):
        train_generator(model, forget, cfg, progress=False)


def test_schedule_warmup_then_cosine():
    lrs = [lr_at(s, 100, 1.0, 0.1) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:])) and lrs[-1] < 0.01
