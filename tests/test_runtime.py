"""Per-run determinism (l2l.runtime): config-seeded dropout and a fixed thread count."""

import pytest
import torch

from l2l.config import preset
from l2l.io import versions
from l2l.models import build_model
from l2l.runtime import THREADS_ENV, fix_threads, seeded_run, threads
from l2l.train import train_generator
from l2l.unlearn import unlearn


@pytest.fixture(scope="module")
def images():
    gen = torch.Generator().manual_seed(0)
    forget = (torch.rand(16, 3, 32, 32, generator=gen) * 255).to(torch.uint8)
    retain = (torch.rand(16, 3, 32, 32, generator=gen) * 128).to(torch.uint8)
    return forget, retain


def _vqgan():
    torch.manual_seed(0)
    model = build_model("vqgan", "smoke")
    assert model.spec.dropout > 0  # the token-embedding dropout this test is about
    return model.eval()


def test_two_unlearning_runs_give_the_same_bytes_whatever_ran_before(images):
    forget, retain = images
    cfg = preset("smoke", unlearn__steps=3)
    original = _vqgan()
    first, _ = unlearn(original, "li2024", forget=forget, retain=retain, cfg=cfg, progress=False)
    torch.rand(1000)  # the caller's own draws must not reach the next run
    second, _ = unlearn(original, "li2024", forget=forget, retain=retain, cfg=cfg, progress=False)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name
    other, _ = unlearn(original, "li2024", forget=forget, retain=retain,
                       cfg=preset("smoke", unlearn__steps=3, seed=1), progress=False)
    assert any(not torch.equal(a, b) for a, b in
               zip(first.state_dict().values(), other.state_dict().values()))


def test_training_is_independent_of_the_global_generator(images):
    forget, _ = images
    cfg = preset("smoke", train__steps=3)
    models = []
    for noise in (1, 500):
        model = _vqgan()
        model.vqgan.requires_grad_(False)
        torch.rand(noise)  # after the initialisation: only the run's own seeding can help
        train_generator(model, forget, cfg, progress=False)
        models.append(model.state_dict())
    for name in models[0]:
        assert torch.equal(models[0][name], models[1][name]), name


def test_seeded_run_restores_the_callers_generator():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with seeded_run(7):
        inside = torch.rand(3)
    assert torch.equal(torch.rand(3), expected)
    with seeded_run(7):
        assert torch.equal(torch.rand(3), inside)


def test_thread_count_is_fixed_and_recorded(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "2")
    assert threads() == 2
    with seeded_run(0):
        assert torch.get_num_threads() == 2
    assert versions()["torch_threads"] == "2"
    monkeypatch.delenv(THREADS_ENV)
    assert fix_threads() == 1 and torch.get_num_threads() == 1
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ValueError, match=THREADS_ENV):
            threads()
