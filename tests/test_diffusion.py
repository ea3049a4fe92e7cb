"""Behaviour tests of the Palette diffusion family: schedules, masks, sampler, encoder split,
official weight layout (checked against expectations written out by hand below)."""

from __future__ import annotations

import pytest
import torch

from l2l.models.diffusion import (
    SCHEDULE_BUFFERS, SIZES, Palette, build_palette, draw_gamma, hybrid_mask, linear_gammas,
    load_palette_state_dict, q_sample, random_box, respaced,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randomised(model: Palette, seed: int = 0) -> Palette:
    """Random weights everywhere (the zero-initialised output layers would make eps_hat = 0)."""
    g = gen(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


@pytest.fixture
def smoke() -> Palette:
    torch.manual_seed(0)
    return build_palette("smoke")


def centre_hole(b: int = 2, size: int = 32) -> torch.Tensor:
    m = torch.zeros(b, 1, size, size)
    m[..., 8:24, 8:24] = 1
    return m


# ---- schedules and forward process --------------------------------------------------------------


def test_forward_process_matches_closed_form() -> None:
    y0 = torch.rand(3, 3, 4, 4, generator=gen(0)) * 2 - 1
    gamma = torch.tensor([0.9, 0.5, 0.01])
    noise = torch.randn(3, 3, 4, 4, generator=gen(1))
    expected = torch.stack(
        [gamma[i].sqrt() * y0[i] + (1 - gamma[i]).sqrt() * noise[i] for i in range(3)])
    assert torch.allclose(q_sample(y0, gamma, noise), expected, atol=1e-6)
    assert torch.allclose(Palette.q_sample(y0, gamma, noise), expected, atol=1e-6)
    # empirically over many draws: mean sqrt(gamma) y0, variance 1 - gamma
    n = 20000
    draws = q_sample(y0[:1].expand(n, -1, -1, -1), gamma[1].expand(n),
                     torch.randn(n, 3, 4, 4, generator=gen(2)))
    assert torch.allclose(draws.mean(0), 0.5**0.5 * y0[0], atol=0.03)
    assert torch.allclose(draws.var(0), torch.full((3, 4, 4), 0.5), atol=0.03)


def test_schedules_monotone_and_gamma_within_step_interval(smoke: Palette) -> None:
    for steps, lo, hi in [(2000, 1e-6, 1e-2), (2000, 1e-4, 0.09), (50, 1e-4, 0.09)]:
        g = linear_gammas(steps, lo, hi)
        assert g.shape == (steps,) and torch.all(g[1:] < g[:-1]) and 0 < g[-1] and g[0] < 1
        assert g[0].item() == pytest.approx(1 - lo)
    g = smoke.train_gammas
    gamma, t = draw_gamma(g, 4000, generator=gen(0))
    assert t.min() >= 1 and t.max() <= len(g) - 1
    assert torch.all(gamma <= g[t - 1]) and torch.all(gamma >= g[t])
    # the sampler respaces the test curve: same end points, decreasing
    test = linear_gammas(*smoke.spec.test_schedule)
    s = smoke.sampling_gammas()
    assert len(s) == smoke.spec.sample_steps and torch.all(s[1:] < s[:-1])
    assert s[0] == test[0] and s[-1] == test[-1]
    assert torch.equal(respaced(test, len(test)), test)
    # min_gamma keeps the respaced sampler on the informative part of the curve
    tiny = SIZES["tiny"]
    s = tiny.sampling_curve()
    assert len(s) == tiny.sample_steps and s.min() >= tiny.min_gamma > 0 and s[0] == test[0]
    with pytest.raises(ValueError, match="sample_steps"):
        build_palette("smoke", sample_steps=700, min_gamma=1e-4)  # only 635 levels above 1e-4


# ---- hybrid masks -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 64, 256])
def test_hybrid_masks_binary_nonempty_in_bounds_and_seeded(size: int) -> None:
    b = 8 if size <= 64 else 3
    m = hybrid_mask(b, size, generator=gen(0))
    assert m.shape == (b, 1, size, size) and m.dtype == torch.float32
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    frac = m.mean(dim=(1, 2, 3))
    assert torch.all(frac > 0) and torch.all(frac < 1)
    assert torch.equal(m, hybrid_mask(b, size, generator=gen(0)))
    assert not torch.equal(m, hybrid_mask(b, size, generator=gen(1)))
    assert not torch.equal(m[0], m[1])  # varies within a batch too
    # the box keeps Palette's margin (20 px at 256) and size (at most 128 px at 256)
    margin, box = round(20 * size / 256), round(128 * size / 256)
    g = gen(3)
    for _ in range(50):
        top, left, h, w = random_box(size, g)
        assert 0 < h <= box and 0 < w <= box
        assert top >= margin and left >= margin
        assert top + h <= size - margin and left + w <= size - margin


def test_sample_mask_is_hybrid(smoke: Palette) -> None:
    assert torch.equal(smoke.sample_mask(4, generator=gen(5)), hybrid_mask(4, 32, generator=gen(5)))


# ---- sampler ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
def test_sampler_keeps_known_region_range_and_seed(sampler: str) -> None:
    model = randomised(build_palette("smoke", sampler=sampler, eta=0.5))
    x = torch.rand(2, 3, 32, 32, generator=gen(0))
    mask = hybrid_mask(2, 32, generator=gen(1))
    out = model.complete(x, mask, generator=gen(2))
    known = mask.expand_as(x) < 0.5
    assert out.shape == x.shape
    assert torch.equal(out[known], x[known])  # bit-exact
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, model.complete(x, mask, generator=gen(2)))
    assert not torch.equal(out, model.complete(x, mask, generator=gen(3)))
    assert not torch.equal(out[~known], x[~known])


class GaussianOracle(torch.nn.Module):
    """Exact eps-predictor for data y0 ~ N(mu, s^2) i.i.d. per pixel ([-1, 1] space)."""

    def __init__(self, mu: float, s: float) -> None:
        super().__init__()
        self.mu, self.s = mu, s

    def forward(self, h: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        y, g = h[:, 3:].double(), gamma.double().view(-1, 1, 1, 1)
        gain = g.sqrt() * self.s**2 / (g * self.s**2 + 1 - g)
        post_mean = self.mu + gain * (y - g.sqrt() * self.mu)
        return ((y - g.sqrt() * post_mean) / (1 - g).sqrt()).float()


@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
def test_full_protocol_sampler_reproduces_gaussian_data_with_exact_eps(sampler: str) -> None:
    # 2000 test-schedule steps from y_t = y_cond with the exact eps of a Gaussian data set must
    # return that Gaussian: a known-answer check of the respacing-free Palette sampler
    model = build_palette("smoke", sample_steps=2000, sampler=sampler)
    model.denoise_fn = GaussianOracle(0.2, 0.3)
    x = torch.full((1, 3, 32, 32), 0.5)
    y = model.complete(x, torch.ones(1, 1, 32, 32), generator=gen(0)) * 2 - 1
    assert y.mean().item() == pytest.approx(0.2, abs=0.02)  # 3072 pixels: s.e. 0.005
    assert y.std().item() == pytest.approx(0.3, abs=0.015)


class GaussianVOracle(GaussianOracle):
    """The same exact predictor in v form: v = sqrt(gamma) eps - sqrt(1 - gamma) E[y0 | y_t]."""

    def forward(self, h: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        y, g = h[:, 3:].double(), gamma.double().view(-1, 1, 1, 1)
        gain = g.sqrt() * self.s**2 / (g * self.s**2 + 1 - g)
        post_mean = self.mu + gain * (y - g.sqrt() * self.mu)
        eps = (y - g.sqrt() * post_mean) / (1 - g).sqrt()
        return (g.sqrt() * eps - (1 - g).sqrt() * post_mean).float()


@pytest.mark.parametrize("sampler", ["ancestral", "ddim"])
def test_v_prediction_sampler_reproduces_gaussian_data(sampler: str) -> None:
    model = build_palette("smoke", sample_steps=2000, sampler=sampler, prediction="v")
    model.denoise_fn = GaussianVOracle(0.2, 0.3)
    x = torch.full((1, 3, 32, 32), 0.5)
    y = model.complete(x, torch.ones(1, 1, 32, 32), generator=gen(0)) * 2 - 1
    assert y.mean().item() == pytest.approx(0.2, abs=0.02)
    assert y.std().item() == pytest.approx(0.3, abs=0.015)


def test_v_prediction_loss_target_and_validation() -> None:
    torch.manual_seed(0)
    model = randomised(build_palette("smoke", prediction="v"))
    x, mask = torch.rand(4, 3, 32, 32, generator=gen(0)), centre_hole(4)
    gamma, noise, cond = model.draw_noise(x, generator=gen(1))
    g = gamma.view(-1, 1, 1, 1)
    v = g.sqrt() * noise - (1 - g).sqrt() * (2 * x - 1)
    out = model.denoise_fn(model.build_input(x, mask, gamma=gamma, noise=noise, cond_noise=cond),
                           gamma)
    expected = torch.nn.functional.mse_loss(mask * out, mask * v)
    assert model.training_loss(x, mask=mask, generator=gen(1)).item() == pytest.approx(
        expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="prediction"):
        build_palette("smoke", prediction="x0")


def test_sampler_restores_training_mode_and_broadcasts_mask(smoke: Palette) -> None:
    smoke.train()
    out = smoke.complete(torch.rand(3, 3, 32, 32), centre_hole(1), generator=gen(0))
    assert out.shape == (3, 3, 32, 32) and smoke.training


# ---- encoder / decoder --------------------------------------------------------------------------


def test_encode_maps_and_decode_consistency(smoke: Palette) -> None:
    model = randomised(smoke)
    x, mask = torch.rand(2, 3, 32, 32, generator=gen(0)), centre_hole()
    gamma, noise, cond = model.draw_noise(x, generator=gen(1))
    feats = model.encode(x, mask, gamma=gamma, noise=noise, cond_noise=cond)
    # smoke: base 8, mults (1, 2), 1 block per level -> stem, res, down, res | middle
    expected = [(8, 32, 32), (8, 32, 32), (8, 16, 16), (16, 16, 16), (16, 16, 16)]
    assert [tuple(f.shape[1:]) for f in feats] == expected
    eps = model.decode(feats, mask, gamma=gamma)
    h = model.build_input(x, mask, gamma=gamma, noise=noise, cond_noise=cond)
    assert torch.allclose(eps, model.denoise_fn(h, gamma), atol=1e-6)
    # missing randomness is drawn from the generator in draw_noise's order
    again = model.encode(x, mask, generator=gen(1))
    assert all(torch.equal(a, b) for a, b in zip(feats, again))


def test_places2_encoder_features_match_spec() -> None:
    with torch.device("meta"):
        model = build_palette("places2")
        x, m, g = torch.empty(1, 3, 256, 256), torch.empty(1, 1, 256, 256), torch.empty(1)
        e = torch.empty_like(x)
        feats = model.encode(x, m, gamma=g, noise=e, cond_noise=e)
    expected = [(64, 256)] * 3 + [(64, 128), (128, 128), (128, 128), (128, 64), (256, 64),
                                  (256, 64), (256, 32), (512, 32), (512, 32), (512, 32)]
    assert [(f.shape[1], f.shape[2]) for f in feats] == expected  # released Palette fork, return_feat
    assert len(model.denoise_fn.input_blocks) == 12


def test_forget_noise_changes_only_noisy_channels_in_the_hole(smoke: Palette) -> None:
    x, mask = torch.rand(3, 3, 32, 32, generator=gen(0)), centre_hole(3)
    gamma, noise, cond = smoke.draw_noise(x, generator=gen(1))
    kw = dict(gamma=gamma, noise=noise, cond_noise=cond)
    plain = smoke.build_input(x, mask, **kw)
    forget = smoke.build_input(x, mask, forget_noise=True, **kw)
    hole = mask.expand(-1, 3, -1, -1) > 0.5
    assert torch.equal(plain[:, :3], forget[:, :3])  # condition channels unchanged
    assert torch.equal(plain[:, 3:][~hole], forget[:, 3:][~hole])  # known pixels unchanged
    assert torch.equal(forget[:, 3:][hole], noise[hole])  # y~_t = eps inside the hole
    assert not torch.equal(plain[:, 3:][hole], forget[:, 3:][hole])
    per_sample = smoke.build_input(x, mask, forget_noise=torch.tensor([True, False, True]), **kw)
    assert torch.equal(per_sample[1], plain[1]) and torch.equal(per_sample[0], forget[0])
    # and the encoder sees it: features differ only through the input
    f0 = smoke.encode(x, mask, **kw)
    f1 = smoke.encode(x, mask, forget_noise=True, **kw)
    assert not torch.equal(f0[0], f1[0])


def test_encoder_decoder_parameters_disjoint_and_covering(smoke: Palette) -> None:
    enc = {id(p) for p in smoke.encoder_parameters()}
    dec = {id(p) for p in smoke.decoder_parameters()}
    assert enc and dec and not enc & dec
    assert enc | dec == {id(p) for p in smoke.parameters()}
    names = {id(p): n for n, p in smoke.named_parameters()}
    assert any(names[i].startswith("denoise_fn.cond_embed") for i in enc)


# ---- training -----------------------------------------------------------------------------------


def test_training_loss_finite_and_decreasing(smoke: Palette) -> None:
    x = torch.rand(8, 3, 32, 32, generator=gen(0))
    opt = torch.optim.Adam(smoke.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = smoke.training_loss(x, generator=gen(1))  # same masks / gamma / noise every step
        assert loss.ndim == 0 and torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


# ---- official layout ----------------------------------------------------------------------------
# Hand-written from Palette's models/guided_diffusion_modules/unet.py with the Places2 config
# (inner_channel 64, mults 1-2-4-8, res_blocks 2, attn_res [16], num_head_channels 32).
EMB = 256
INPUT_RES = {  # input block -> (in, out, resample) of its ResBlock (block 0 is the stem conv)
    1: (64, 64), 2: (64, 64), 3: (64, 64), 4: (64, 128), 5: (128, 128), 6: (128, 128),
    7: (128, 256), 8: (256, 256), 9: (256, 256), 10: (256, 512), 11: (512, 512),
}
OUTPUT_RES = {  # output block -> (in = h + skip, out); blocks 2, 5, 8 add an up ResBlock at ".1"
    0: (1024, 512), 1: (1024, 512), 2: (768, 512), 3: (768, 256), 4: (512, 256), 5: (384, 256),
    6: (384, 128), 7: (256, 128), 8: (192, 128), 9: (192, 64), 10: (128, 64), 11: (128, 64),
}
UP_BLOCKS = {2: 512, 5: 256, 8: 128}


def res_keys(prefix: str, cin: int, cout: int) -> dict[str, tuple[int, ...]]:
    t = {
        "in_layers.0.weight": (cin,), "in_layers.0.bias": (cin,),
        "in_layers.2.weight": (cout, cin, 3, 3), "in_layers.2.bias": (cout,),
        "emb_layers.1.weight": (2 * cout, EMB), "emb_layers.1.bias": (2 * cout,),
        "out_layers.0.weight": (cout,), "out_layers.0.bias": (cout,),
        "out_layers.3.weight": (cout, cout, 3, 3), "out_layers.3.bias": (cout,),
    }
    if cin != cout:
        t |= {"skip_connection.weight": (cout, cin, 1, 1), "skip_connection.bias": (cout,)}
    return {f"{prefix}.{k}": v for k, v in t.items()}


def attn_keys(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    t = {"norm.weight": (c,), "norm.bias": (c,), "qkv.weight": (3 * c, c, 1), "qkv.bias": (3 * c,),
         "proj_out.weight": (c, c, 1), "proj_out.bias": (c,)}
    return {f"{prefix}.{k}": v for k, v in t.items()}


def official_table() -> dict[str, tuple[int, ...]]:
    t = {"cond_embed.0.weight": (EMB, 64), "cond_embed.0.bias": (EMB,),
         "cond_embed.2.weight": (EMB, EMB), "cond_embed.2.bias": (EMB,),
         "input_blocks.0.0.weight": (64, 6, 3, 3), "input_blocks.0.0.bias": (64,)}
    for i, (cin, cout) in INPUT_RES.items():
        t |= res_keys(f"input_blocks.{i}.0", cin, cout)
    t |= res_keys("middle_block.0", 512, 512) | attn_keys("middle_block.1", 512)
    t |= res_keys("middle_block.2", 512, 512)
    for i, (cin, cout) in OUTPUT_RES.items():
        t |= res_keys(f"output_blocks.{i}.0", cin, cout)
        if i in UP_BLOCKS:
            t |= res_keys(f"output_blocks.{i}.1", UP_BLOCKS[i], UP_BLOCKS[i])
    t |= {"out.0.weight": (64,), "out.0.bias": (64,),
          "out.2.weight": (3, 64, 3, 3), "out.2.bias": (3,)}
    return t


def test_places2_key_shapes_match_hand_written_layout() -> None:
    with torch.device("meta"):
        model = build_palette("places2")
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    representative = {
        "denoise_fn.input_blocks.0.0.weight": (64, 6, 3, 3),
        "denoise_fn.input_blocks.4.0.emb_layers.1.weight": (256, 256),
        "denoise_fn.input_blocks.4.0.in_layers.2.weight": (128, 64, 3, 3),
        "denoise_fn.input_blocks.4.0.out_layers.3.weight": (128, 128, 3, 3),
        "denoise_fn.input_blocks.4.0.skip_connection.weight": (128, 64, 1, 1),
        "denoise_fn.input_blocks.3.0.in_layers.2.weight": (64, 64, 3, 3),  # down ResBlock
        "denoise_fn.middle_block.1.qkv.weight": (1536, 512, 1),
        "denoise_fn.middle_block.1.proj_out.weight": (512, 512, 1),
        "denoise_fn.output_blocks.2.1.in_layers.2.weight": (512, 512, 3, 3),  # up ResBlock
        "denoise_fn.out.2.weight": (3, 64, 3, 3),
    }
    for key, shape in representative.items():
        assert got[key] == shape, key
    assert "denoise_fn.input_blocks.3.0.skip_connection.weight" not in got
    assert not any(".1.qkv" in k for k in got if "middle" not in k)  # attention only in the middle
    assert got == {f"denoise_fn.{k}": v for k, v in official_table().items()}
    assert len(got) == 326


def test_official_synthetic_checkpoint_loads_strictly() -> None:
    g = gen(0)
    sd = {f"denoise_fn.{k}": torch.randn(s, generator=g) for k, s in official_table().items()}
    sd |= {k: torch.rand(2000) for k in SCHEDULE_BUFFERS}  # Palette's Network buffers
    with torch.device("meta"):
        model = build_palette("places2")
    load_palette_state_dict(model, sd, assign=True)
    qkv = sd["denoise_fn.middle_block.1.qkv.weight"]
    assert torch.equal(model.denoise_fn.middle_block[1].qkv.weight, qkv)
    assert torch.equal(model.denoise_fn.out[2].bias, sd["denoise_fn.out.2.bias"])
    assert all(p.device.type == "cpu" for p in model.parameters())
    # bare U-Net keys work too; a missing or an unknown key does not
    with torch.device("meta"):
        model = build_palette("places2")
    bare = {k.removeprefix("denoise_fn."): v for k, v in sd.items()}
    load_palette_state_dict(model, bare, assign=True)
    bad = dict(sd)
    bad.pop("denoise_fn.out.2.bias")
    with torch.device("meta"):
        model = build_palette("places2")
    with pytest.raises(RuntimeError, match="out.2.bias"):
        load_palette_state_dict(model, bad, assign=True)
    with pytest.raises(RuntimeError, match="extra"):
        load_palette_state_dict(model, sd | {"denoise_fn.extra": torch.zeros(1)}, assign=True)


# ---- factory ------------------------------------------------------------------------------------


def test_build_palette_sizes_and_errors() -> None:
    with pytest.raises(ValueError, match="smoke, tiny, places2"):
        build_palette("huge")
    with pytest.raises(TypeError):
        build_palette("smoke", nonsense=1)
    m = build_palette("smoke", sample_steps=3, inner_channel=16)
    assert m.spec.sample_steps == 3 and m.denoise_fn.spec.inner_channel == 16
    assert m.family == "diffusion" and set(SIZES) == {"smoke", "tiny", "places2"}
    paper = SIZES["places2"]
    assert paper.sample_steps == 2000 and paper.test_schedule == (2000, 1e-4, 0.09)
    assert paper.min_gamma == 0 and paper.temperature == 1 and paper.sampler == "ancestral"
    assert paper.prediction == "eps" and SIZES["tiny"].prediction == "v"


def test_centre_box_masks_are_the_test_holes_and_the_sizes_between():
    from l2l.images import centre_box_masks, make_mask

    masks = centre_box_masks(300, 32, generator=torch.Generator().manual_seed(0))
    assert masks.shape == (300, 1, 32, 32) and set(masks.unique().tolist()) == {0.0, 1.0}
    sides = masks[:, 0].sum((1, 2)).sqrt().round().int()
    assert set(sides.tolist()) == {8, 10, 12, 14, 16}  # centre_quarter .. centre_half
    for mask, side in zip(masks[:20], sides[:20]):
        assert torch.equal(mask[None], make_mask(f"centre_{int(side) // 2}", 32))


def test_hybrid_centre_training_masks_are_half_centre_squares():
    from l2l.models import build_model

    model = build_model("diffusion", "tiny")
    assert model.spec.train_mask == "hybrid_centre"
    masks = model.sample_mask(400, generator=torch.Generator().manual_seed(0))
    m = masks[:, 0]
    rows, cols = m.amax(2), m.amax(1)
    side = rows.sum(1)
    square = (m.sum((1, 2)) == side * side) & (rows.sum(1) == cols.sum(1))
    centred = (rows.argmax(1) == (32 - side) // 2) & (cols.argmax(1) == (32 - side) // 2)
    share = (square & centred).float().mean().item()
    assert 0.4 < share < 0.6, share
    with pytest.raises(ValueError, match="train_mask"):
        build_model("diffusion", "tiny", train_mask="boxes")
