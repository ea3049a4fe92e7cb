"""Behaviour tests of the VQ-GAN (MAGE) family: tokenizer, masking, MaskGIT completion, layout."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from l2l.data import make_mask
from l2l.models.mage import MAGE, SIZES, TokenMask, build_mage, load_official
from l2l.models.vqgan import (PatchDiscriminator, adaptive_weight, load_official_vqgan,
                              reconstruction_mse, train_tokenizer)


@pytest.fixture
def smoke() -> MAGE:
    torch.manual_seed(0)
    return build_mage("smoke").eval()


def smooth_images(n: int = 16, seed: int = 0) -> torch.Tensor:
    """Low-frequency random colour fields, float [n, 3, 32, 32] in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=32, mode="bilinear")


def centre(b: int) -> torch.Tensor:
    return make_mask("centre_half", 32).expand(b, 1, 32, 32)


# ---- sizes --------------------------------------------------------------------------------------


def test_unknown_size_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="smoke.*tiny.*base"):
        build_mage("huge")


def test_base_ids_match_the_released_vocabulary() -> None:
    s = SIZES["base"]
    assert (s.vocab_size, s.mask_id, s.fake_class_id, s.num_tokens) == (2025, 2024, 1100, 256)


# ---- tokenizer ----------------------------------------------------------------------------------


def test_tokenizer_training_improves_round_trip_uses_codes_and_freezes(smoke: MAGE) -> None:
    x = smooth_images(64)
    before = reconstruction_mse(smoke.vqgan, x[:16])
    hist = smoke.train_tokenizer(x, steps=30, batch_size=8, lr=3e-3,
                                 generator=torch.Generator().manual_seed(0), progress=False)
    after = reconstruction_mse(smoke.vqgan, x[:16])
    assert after < 0.5 * before
    assert {"step", "rec_mse", "codes_used"} <= set(hist.columns)
    ids = smoke.vqgan.encode_tokens(x[:16])
    assert ids.shape == (16, 8, 8) and ids.dtype == torch.long
    assert ids.unique().numel() >= 4  # no collapse onto one code
    assert not any(p.requires_grad for p in smoke.tokenizer_parameters())
    out = smoke.vqgan.decode_tokens(ids)
    assert out.shape == x[:16].shape and out.min() >= 0 and out.max() <= 1


def test_adversarial_tokenizer_term_starts_late_stays_finite_and_is_seeded(smoke: MAGE) -> None:
    x = smooth_images(32)
    start = copy.deepcopy(smoke.vqgan.state_dict())

    def run(adversarial: float) -> tuple[pd.DataFrame, dict[str, torch.Tensor]]:
        smoke.vqgan.load_state_dict(start)
        hist = smoke.train_tokenizer(x, steps=20, batch_size=8, lr=3e-3, adversarial=adversarial,
                                     generator=torch.Generator().manual_seed(0), progress=False)
        return hist, copy.deepcopy(smoke.vqgan.state_dict())

    plain, w_plain = run(0.0)
    assert plain["adv_loss"].isna().all() and plain["disc_loss"].isna().all()
    hist, w_adv = run(0.5)
    on = hist["step"] >= 6  # adversarial_start 0.3 of 20 steps
    assert hist.loc[~on, "adv_loss"].isna().all()
    assert np.isfinite(hist.loc[on, ["adv_loss", "disc_loss"]].to_numpy()).all()
    assert hist.loc[on, "disc_loss"].between(0, 4).all()  # two hinge terms
    assert any(not torch.equal(w_plain[k], w_adv[k]) for k in w_plain)
    _, w_again = run(0.5)
    assert all(torch.equal(w_adv[k], w_again[k]) for k in w_adv)  # critic seeded by `generator`


def test_adaptive_weight_is_the_gradient_norm_ratio() -> None:
    w = torch.randn(4, 3, requires_grad=True)
    rec, adv = (3 * w).sum(), (-0.5 * w).sum()
    assert adaptive_weight(rec, adv, w, 0.2).item() == pytest.approx(0.2 * 6, rel=1e-3)


@pytest.mark.parametrize("kw", [{"adversarial": -0.1},
                                {"adversarial": 0.5, "adversarial_start": 1.5}])
def test_bad_adversarial_settings_stop_before_training(smoke: MAGE, kw: dict) -> None:
    before = copy.deepcopy(smoke.vqgan.state_dict())
    with pytest.raises(ValueError, match="adversarial"):
        train_tokenizer(smoke.vqgan, smooth_images(8), steps=2, **kw)
    assert all(torch.equal(before[k], v) for k, v in smoke.vqgan.state_dict().items())


def test_patch_discriminator_shape() -> None:
    assert PatchDiscriminator()(torch.rand(2, 3, 32, 32)).shape == (2, 1, 8, 8)


# ---- masks and loss -----------------------------------------------------------------------------


def test_sample_mask_drops_half_and_masks_ceil_l_r(smoke: MAGE) -> None:
    n = smoke.spec.num_tokens
    g = torch.Generator().manual_seed(0)
    counts = set()
    for _ in range(50):
        drop, masked = smoke.sample_mask(5, generator=g)
        assert drop.shape == masked.shape == (5, n) and drop.dtype == torch.bool
        assert (drop.sum(1) == math.ceil(n * 0.5)).all()
        k = masked.sum(1)
        assert (k == k[0]).all() and math.ceil(n * 0.5) <= k[0] <= n
        assert not (drop & ~masked).any()  # dropped positions are masked too
        assert not torch.equal(masked[0], masked[1])  # per-sample random order
        counts.add(int(k[0]))
    assert len(counts) > 5  # one truncated-normal rate per batch, varying across batches
    a = smoke.sample_mask(3, generator=torch.Generator().manual_seed(7))
    b = smoke.sample_mask(3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.masked, b.masked) and torch.equal(a.drop, b.drop)


def test_encode_shapes_for_both_mask_kinds(smoke: MAGE) -> None:
    x, s = smooth_images(4), smoke.spec
    tm = smoke.sample_mask(4, generator=torch.Generator().manual_seed(0))
    assert smoke.encode(x, tm).shape == (4, 1 + s.num_tokens // 2, s.embed_dim)
    assert smoke.encode(x[:2], tm.take(slice(0, 2))).shape[0] == 2
    assert smoke.encode(x, centre(4)).shape == (4, 1 + s.num_tokens, s.embed_dim)
    # centre 16x16 of 32x32 = 4x4 tokens, plus one token of margin -> 6x6
    assert (smoke.token_mask(centre(4)).sum(1) == 36).all()


def test_training_loss_finite_and_decreases_on_a_fixed_batch(smoke: MAGE) -> None:
    x = smooth_images(8)
    opt = torch.optim.Adam(smoke.encoder_parameters() + smoke.decoder_parameters(), lr=1e-2)
    losses = []
    for _ in range(20):  # same mask every step (re-seeded generator), dropout off (eval mode)
        loss = smoke.training_loss(x, generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_parameter_groups_disjoint_covering_and_gradients(smoke: MAGE) -> None:
    enc = {id(p) for p in smoke.encoder_parameters()}
    dec = {id(p) for p in smoke.decoder_parameters()}
    tok = {id(p) for p in smoke.tokenizer_parameters()}
    assert not (enc & dec) and not (enc & tok) and not (dec & tok)
    assert enc | dec | tok == {id(p) for p in smoke.parameters()}
    smoke.encode(smooth_images(2), centre(2)).square().sum().backward()
    assert all(p.grad is None for p in smoke.decoder_parameters())
    assert all(p.grad is None for p in smoke.tokenizer_parameters())
    assert smoke.token_emb.word_embeddings.weight.grad is not None


# ---- completion ---------------------------------------------------------------------------------


def test_maskgit_fills_exactly_the_masked_tokens(smoke: MAGE) -> None:
    x, m = smooth_images(4), centre(4)
    ids = smoke.complete_tokens(x, m, generator=torch.Generator().manual_seed(0))
    known, masked = smoke.input_tokens(x, m), smoke.token_mask(m)
    assert torch.equal(ids[~masked], known[~masked])
    assert ((ids >= 0) & (ids < smoke.spec.codebook_size)).all()  # no [MASK] or class id left


def test_complete_keeps_known_pixels_in_range_and_is_seeded(smoke: MAGE) -> None:
    x, m = smooth_images(4), centre(4)
    out = smoke.complete(x, m, generator=torch.Generator().manual_seed(3))
    again = smoke.complete(x, m, generator=torch.Generator().manual_seed(3))
    known = (m < 0.5).expand_as(x)
    assert out.shape == x.shape and torch.equal(out[known], x[known])
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, again)


@pytest.mark.parametrize("steps", [1, 3])
def test_mean_token_choice_keeps_known_pixels_and_is_deterministic(smoke: MAGE, steps: int) -> None:
    x, m = smooth_images(4), centre(4)
    mean = dataclasses.replace(smoke.spec, token_choice="mean", decode_steps=steps,
                               sample_temperature=0.0, choice_temperature=0.0)
    smoke.spec = mean
    out = smoke.complete(x, m, generator=torch.Generator().manual_seed(1))
    again = smoke.complete(x, m, generator=torch.Generator().manual_seed(2))
    known = (m < 0.5).expand_as(x)
    assert torch.equal(out[known], x[known]) and 0 <= out.min() and out.max() <= 1
    assert torch.equal(out, again)  # no sampling: the seed does not matter
    ids = smoke.complete_tokens(x, m)  # the argmax codes; known tokens unchanged
    masked = smoke.token_mask(m)
    assert torch.equal(ids[~masked], smoke.input_tokens(x, m)[~masked])
    if steps == 1:  # one step: the hole is the decoded softmax-expected codebook vectors
        smoke.spec = dataclasses.replace(mean, token_choice="argmax")
        assert not torch.equal(smoke.complete(x, m), out)


def test_token_choice_is_validated() -> None:
    with pytest.raises(ValueError, match="token_choice"):
        dataclasses.replace(SIZES["smoke"], token_choice="median")


def test_known_mean_hole_fill_uses_only_known_pixels(smoke: MAGE) -> None:
    x, m = smooth_images(2), centre(2)
    smoke.spec = dataclasses.replace(smoke.spec, hole_fill=None)
    noisy = torch.where(m > 0.5, torch.rand_like(x), x)  # hole content must not matter
    assert torch.equal(smoke.input_tokens(x, m), smoke.input_tokens(noisy, m))


def test_decode_keeps_given_known_tokens(smoke: MAGE) -> None:
    x, m = smooth_images(2), centre(2)
    z = smoke.encode(x, m)
    out = smoke.decode(z, m, tokens=smoke.input_tokens(x, m))
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    tm = smoke.sample_mask(2, generator=torch.Generator().manual_seed(0))
    assert smoke.decode(smoke.encode(x, tm), tm).shape == x.shape


# ---- official layout ----------------------------------------------------------------------------

# mage-vitb-1600.pth ['model'] (models_mage.py, mage_vit_base_patch16), written out by hand
MAGE_TOP = {
    "token_emb.word_embeddings.weight": (2025, 768),
    "token_emb.position_embeddings.weight": (257, 768),
    "token_emb.LayerNorm.weight": (768,), "token_emb.LayerNorm.bias": (768,),
    "token_emb.position_ids": (1, 257),
    "patch_embed.proj.weight": (768, 3, 16, 16), "patch_embed.proj.bias": (768,),
    "cls_token": (1, 1, 768), "pos_embed": (1, 257, 768),
    "norm.weight": (768,), "norm.bias": (768,),
    "decoder_embed.weight": (768, 768), "decoder_embed.bias": (768,),
    "mask_token": (1, 1, 768),
    "decoder_pos_embed": (1, 257, 768), "decoder_pos_embed_learned": (1, 257, 768),
    "decoder_norm.weight": (768,), "decoder_norm.bias": (768,),
    "decoder_pred.weight": (768, 768), "decoder_pred.bias": (768,),
    "mlm_layer.fc.weight": (768, 768), "mlm_layer.fc.bias": (768,),
    "mlm_layer.ln.weight": (768,), "mlm_layer.ln.bias": (768,),
    "mlm_layer.bias": (1, 1, 2025),
}
VIT_BLOCK = {  # every one of blocks.0-11 and decoder_blocks.0-7 (both width 768)
    "norm1.weight": (768,), "norm1.bias": (768,),
    "attn.qkv.weight": (2304, 768), "attn.qkv.bias": (2304,),
    "attn.proj.weight": (768, 768), "attn.proj.bias": (768,),
    "norm2.weight": (768,), "norm2.bias": (768,),
    "mlp.fc1.weight": (3072, 768), "mlp.fc1.bias": (3072,),
    "mlp.fc2.weight": (768, 3072), "mlp.fc2.bias": (768,),
}
# vqgan_jax_strongaug.ckpt (config/vqgan.yaml: ch 128, ch_mult 1-1-2-2-4, 2 res blocks, z 256)
VQ_TOP = {
    "encoder.conv_in.weight": (128, 3, 3, 3),
    "encoder.norm_out.weight": (512,), "encoder.norm_out.bias": (512,),
    "encoder.conv_out.weight": (256, 512, 1, 1), "encoder.conv_out.bias": (256,),
    "decoder.conv_in.weight": (512, 256, 3, 3), "decoder.conv_in.bias": (512,),
    "decoder.norm_out.weight": (128,), "decoder.norm_out.bias": (128,),
    "decoder.conv_out.weight": (3, 128, 3, 3), "decoder.conv_out.bias": (3,),
    "quantize.embedding.weight": (1024, 256),
}
VQ_RES_BLOCKS = [  # (prefix, in, out); a 1x1 nin_shortcut [out, out] when in != out
    ("encoder.down.0.block.0", 128, 128), ("encoder.down.0.block.1", 128, 128),
    ("encoder.down.1.block.0", 128, 128), ("encoder.down.1.block.1", 128, 128),
    ("encoder.down.2.block.0", 128, 256), ("encoder.down.2.block.1", 256, 256),
    ("encoder.down.3.block.0", 256, 256), ("encoder.down.3.block.1", 256, 256),
    ("encoder.down.4.block.0", 256, 512), ("encoder.down.4.block.1", 512, 512),
    ("encoder.mid.block_1", 512, 512), ("encoder.mid.block_2", 512, 512),
    ("decoder.mid.block_1", 512, 512), ("decoder.mid.block_2", 512, 512),
    ("decoder.up.4.block.0", 512, 512), ("decoder.up.4.block.1", 512, 512),
    ("decoder.up.3.block.0", 512, 256), ("decoder.up.3.block.1", 256, 256),
    ("decoder.up.2.block.0", 256, 256), ("decoder.up.2.block.1", 256, 256),
    ("decoder.up.1.block.0", 256, 128), ("decoder.up.1.block.1", 128, 128),
    ("decoder.up.0.block.0", 128, 128), ("decoder.up.0.block.1", 128, 128),
]
VQ_UPSAMPLE = {"decoder.up.4": 512, "decoder.up.3": 256, "decoder.up.2": 256, "decoder.up.1": 128}


def vqgan_table() -> dict[str, tuple[int, ...]]:
    table = dict(VQ_TOP)
    for prefix, cin, cout in VQ_RES_BLOCKS:
        table.update({f"{prefix}.norm1.weight": (cin,), f"{prefix}.norm1.bias": (cin,),
                      f"{prefix}.conv1.weight": (cout, cin, 3, 3),
                      f"{prefix}.norm2.weight": (cout,), f"{prefix}.norm2.bias": (cout,),
                      f"{prefix}.conv2.weight": (cout, cout, 3, 3)})
        if cin != cout:
            table[f"{prefix}.nin_shortcut.weight"] = (cout, cout, 1, 1)
    for prefix, c in VQ_UPSAMPLE.items():
        table[f"{prefix}.upsample.conv.weight"] = (c, c, 3, 3)
        table[f"{prefix}.upsample.conv.bias"] = (c,)
    return table


def mage_table(with_vqgan: bool) -> dict[str, tuple[int, ...]]:
    table = dict(MAGE_TOP)
    for name, depth in (("blocks", 12), ("decoder_blocks", 8)):
        for i in range(depth):
            table.update({f"{name}.{i}.{k}": v for k, v in VIT_BLOCK.items()})
    if with_vqgan:
        table.update({f"vqgan.{k}": v for k, v in vqgan_table().items()})
    return table


def synthetic(table: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {k: torch.empty(v, device="meta") for k, v in table.items()}


@pytest.fixture(scope="module")
def base_meta() -> MAGE:
    with torch.device("meta"):
        return build_mage("base")


def test_official_mage_checkpoint_loads_strictly(base_meta: MAGE) -> None:
    dropped = load_official(base_meta, {"model": synthetic(mage_table(with_vqgan=True))})
    assert "pos_embed" in dropped and "decoder_pred.weight" in dropped
    # a transformer-only file plus the separate tokenizer checkpoint
    load_official(base_meta, synthetic(mage_table(with_vqgan=False)),
                  tokenizer={"state_dict": synthetic(vqgan_table())})


def test_official_layout_mismatches_are_refused(base_meta: MAGE) -> None:
    table = mage_table(with_vqgan=True)
    del table["mlm_layer.bias"]
    with pytest.raises(RuntimeError, match="mlm_layer.bias"):
        load_official(base_meta, synthetic(table))
    with pytest.raises(RuntimeError):
        load_official(base_meta, synthetic({**mage_table(True), "extra.weight": (1,)}))


def test_official_tokenizer_checkpoint_loads_strictly(base_meta: MAGE) -> None:
    load_official_vqgan(base_meta.vqgan, {"state_dict": synthetic(vqgan_table())})
    assert set(base_meta.vqgan.state_dict()) == set(vqgan_table())
