"""Behaviour tests of the MAE: patch order, masking, completion, training, official layout."""

from __future__ import annotations

import math

import pytest
import torch

from l2l.models.mae import MAE, SIZES, build_mae


@pytest.fixture
def smoke() -> MAE:
    torch.manual_seed(0)
    return build_mae("smoke").eval()


def images(b: int = 2, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


def centre_hole(b: int = 2, size: int = 32, hole: int = 16) -> torch.Tensor:
    m = torch.zeros(b, 1, size, size)
    lo = (size - hole) // 2
    m[:, :, lo : lo + hole, lo : lo + hole] = 1
    return m


# ---- patches ------------------------------------------------------------------------------------


def test_patchify_round_trip_and_official_order(smoke: MAE) -> None:
    x = images()
    p = smoke.spec.patch_size
    patches = smoke.patchify(x)
    assert patches.shape == (2, 64, p * p * 3)
    assert torch.equal(smoke.unpatchify(patches), x)
    # patch 0 = top-left p x p block, pixels ordered (row, col, channel)
    assert torch.equal(patches[0, 0], x[0, :, :p, :p].permute(1, 2, 0).reshape(-1))
    # patch 1 is its right neighbour (row-major patch order)
    assert torch.equal(patches[0, 1], x[0, :, :p, p : 2 * p].permute(1, 2, 0).reshape(-1))


def test_pos_embed_is_fixed_sincos_with_zero_cls_row(smoke: MAE) -> None:
    pe, d, g = smoke.pos_embed[0], smoke.spec.embed_dim, smoke.spec.grid_size
    assert pe.shape == (1 + g * g, d) and not pe.requires_grad
    assert torch.all(pe[0] == 0)
    r, c = 2, 5
    row = pe[1 + r * g + c]
    # first half encodes the column, second half the row; frequency 1 at channels 0 / d/4
    expected = torch.tensor([math.sin(c), math.cos(c), math.sin(r), math.cos(r)])
    assert torch.allclose(row[[0, d // 4, d // 2, 3 * d // 4]], expected, atol=1e-6)
    assert "pos_embed" in smoke.state_dict() and "decoder_pos_embed" in smoke.state_dict()
    assert all(n not in dict(smoke.named_parameters()) for n in ("pos_embed", "decoder_pos_embed"))


# ---- masking ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 0.75, 0.9])
def test_random_masking_keeps_official_count_and_restores(smoke: MAE, ratio: float) -> None:
    b, n, d = 3, smoke.spec.num_patches, 5
    x = torch.randn(b, n, d)
    keep = int(n * (1 - ratio))
    gen = torch.Generator().manual_seed(1)
    x_kept, mask, ids_restore = smoke.random_masking(x, ratio, generator=gen)
    assert x_kept.shape == (b, keep, d)
    assert torch.all(mask.sum(1) == n - keep) and set(mask.unique().tolist()) <= {0.0, 1.0}
    # appending zeros for the removed tokens and unshuffling puts every kept token back in place
    full = torch.cat([x_kept, torch.zeros(b, n - keep, d)], dim=1)
    restored = torch.gather(full, 1, ids_restore[..., None].expand(-1, -1, d))
    kept = mask == 0
    assert torch.equal(restored[kept], x[kept])
    assert torch.all(restored[~kept] == 0)
    patch = smoke.random_patch_mask(b, ratio, generator=torch.Generator().manual_seed(1))
    assert patch.dtype == torch.bool and torch.all(patch.sum(1) == n - keep)
    assert torch.equal(patch, mask.bool())  # same draw as random_masking


def test_random_masking_is_deterministic_with_generator(smoke: MAE) -> None:
    x = torch.randn(2, smoke.spec.num_patches, 4)
    a = smoke.random_masking(x, 0.75, generator=torch.Generator().manual_seed(7))
    b = smoke.random_masking(x, 0.75, generator=torch.Generator().manual_seed(7))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    m1 = smoke.random_patch_mask(4, 0.5, generator=torch.Generator().manual_seed(3))
    m2 = smoke.random_patch_mask(4, 0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(m1, m2)


def test_patch_mask_from_centre_hole(smoke: MAE) -> None:
    mask = smoke.patch_mask(centre_hole())
    grid = mask.view(2, 8, 8)
    assert mask.dtype == torch.bool and torch.all(mask.sum(1) == 16)
    assert torch.all(grid[:, 2:6, 2:6]) and grid.sum() == 2 * 16
    # one hole pixel is enough to remove its patch
    m = torch.zeros(1, 1, 32, 32)
    m[0, 0, 5, 9] = 1
    assert smoke.patch_mask(m).nonzero().tolist() == [[0, 1 * 8 + 2]]


def test_patch_mask_errors(smoke: MAE) -> None:
    m = centre_hole()
    m[1] = 0
    m[1, :, :4, :4] = 1
    with pytest.raises(ValueError, match="different numbers of patches"):
        smoke.patch_mask(m)
    with pytest.raises(ValueError, match="every patch"):
        smoke.patch_mask(torch.ones(2, 1, 32, 32))


def test_ids_restore_from_mask_is_stable(smoke: MAE) -> None:
    mask = torch.tensor([[False, True, False, True], [True, False, False, True]])
    ids = MAE.ids_restore_from_mask(mask)
    # kept first in patch order, then removed in patch order
    assert ids.tolist() == [[0, 2, 1, 3], [2, 0, 1, 3]]


# ---- encoder / decoder / I2I --------------------------------------------------------------------


def test_encode_decode_shapes(smoke: MAE) -> None:
    x, hole = images(), centre_hole()
    z = smoke.encode(x, hole)
    assert z.shape == (2, 1 + 64 - 16, smoke.spec.embed_dim)
    assert torch.equal(z, smoke.forward_encoder(x, smoke.patch_mask(hole)))
    assert smoke.decode(z, hole).shape == x.shape
    pred = smoke.forward_decoder(z, smoke.patch_mask(hole))
    assert pred.shape == (2, 64, 4 * 4 * 3)


def test_stable_order_matches_official_shuffled_path(smoke: MAE) -> None:
    """We keep patches in patch order, the official code in noise order: same prediction."""
    x = images()
    gen = torch.Generator().manual_seed(5)
    tokens = smoke.patch_embed(smoke.normalize(x)) + smoke.pos_embed[:, 1:]
    kept, mask, ids_restore = smoke.random_masking(tokens, 0.75, generator=gen)
    z = torch.cat([(smoke.cls_token + smoke.pos_embed[:, :1]).expand(2, -1, -1), kept], dim=1)
    for blk in smoke.blocks:
        z = blk(z)
    y = smoke.decoder_embed(smoke.norm(z))
    seq = torch.cat([y[:, 1:], smoke.mask_token.expand(2, 64 - kept.shape[1], -1)], dim=1)
    seq = torch.gather(seq, 1, ids_restore[..., None].expand(-1, -1, y.shape[-1]))
    y = torch.cat([y[:, :1], seq], dim=1) + smoke.decoder_pos_embed
    for blk in smoke.decoder_blocks:
        y = blk(y)
    official = smoke.decoder_pred(smoke.decoder_norm(y))[:, 1:]
    _, pred, ours_mask = smoke(x, 0.75, generator=torch.Generator().manual_seed(5))
    assert torch.equal(ours_mask, mask)
    assert torch.allclose(pred, official, atol=1e-5)


def test_complete_keeps_known_region_and_range(smoke: MAE) -> None:
    x, hole = images(), centre_hole()
    out = smoke.complete(x, hole)
    known = hole.expand_as(x) == 0
    assert torch.equal(out[known], x[known])
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, x)
    # a bool patch mask is accepted too and gives the same result for a patch-aligned hole
    assert torch.equal(smoke.complete(x, smoke.patch_mask(hole)), out)


def test_one_mask_for_the_batch_completes_every_image_alike(smoke: MAE) -> None:
    # a [1, 1, H, W] mask once completed a batch with other images' patches (the Varshney &
    # Torra probe passed one): it must equal the per-image mask, and a wrong batch must fail
    x = images(b=4)
    assert torch.equal(smoke.complete(x, centre_hole(b=1)), smoke.complete(x, centre_hole(b=4)))
    with pytest.raises(ValueError, match="mask batch 2 does not match the image batch 4"):
        smoke.complete(x, centre_hole(b=2))


def test_training_loss_decreases_when_overfitting() -> None:
    torch.manual_seed(0)
    model = build_mae("smoke")
    # smooth random images (4x4 noise upsampled): learnable structure beyond the pixel mean
    coarse = torch.rand(4, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    x = torch.nn.functional.interpolate(coarse, size=32, mode="bilinear")
    first = model.training_loss(x, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(first) and first > 0
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(30):  # fixed batch and fixed mask: pure memorisation
        loss = model.training_loss(x, generator=torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = model.training_loss(x, generator=torch.Generator().manual_seed(0))
    assert last < 0.7 * first


def test_forward_loss_counts_removed_patches_only(smoke: MAE) -> None:
    x = images()
    target = smoke.patchify(smoke.normalize(x))
    mask = smoke.random_patch_mask(2, 0.5, generator=torch.Generator().manual_seed(0))
    pred = target.clone()
    pred[~mask] += 10.0  # errors on kept patches must not count
    pred[mask] += 1.0
    assert torch.isclose(smoke.forward_loss(x, pred, mask), torch.tensor(1.0))


def test_parameter_groups_are_disjoint_and_complete(smoke: MAE) -> None:
    enc = {id(p) for p in smoke.encoder_parameters()}
    dec = {id(p) for p in smoke.decoder_parameters()}
    assert enc.isdisjoint(dec)
    assert enc | dec == {id(p) for p in smoke.parameters()}
    assert id(smoke.cls_token) in enc and id(smoke.mask_token) in dec


def test_tiny_size_and_family() -> None:
    model = build_mae("tiny")
    assert model.family == "mae" and model.spec == SIZES["tiny"]
    assert 0.8e6 < sum(p.numel() for p in model.parameters()) < 1.0e6


def test_unknown_size_lists_sizes() -> None:
    with pytest.raises(ValueError, match="tiny.*base.*large"):
        build_mae("huge")


# ---- official checkpoint layout -----------------------------------------------------------------


def official_shapes(
    dim: int, depth: int, dec_dim: int = 512, dec_depth: int = 8
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of facebookresearch/mae MaskedAutoencoderViT (patch 16, 224 px), by hand."""
    tokens, pix = 14 * 14 + 1, 16 * 16 * 3

    def block(prefix: str, d: int) -> dict[str, tuple[int, ...]]:
        return {
            f"{prefix}.norm1.weight": (d,), f"{prefix}.norm1.bias": (d,),
            f"{prefix}.attn.qkv.weight": (3 * d, d), f"{prefix}.attn.qkv.bias": (3 * d,),
            f"{prefix}.attn.proj.weight": (d, d), f"{prefix}.attn.proj.bias": (d,),
            f"{prefix}.norm2.weight": (d,), f"{prefix}.norm2.bias": (d,),
            f"{prefix}.mlp.fc1.weight": (4 * d, d), f"{prefix}.mlp.fc1.bias": (4 * d,),
            f"{prefix}.mlp.fc2.weight": (d, 4 * d), f"{prefix}.mlp.fc2.bias": (d,),
        }  # fmt: skip

    shapes: dict[str, tuple[int, ...]] = {
        "cls_token": (1, 1, dim), "pos_embed": (1, tokens, dim),
        "patch_embed.proj.weight": (dim, 3, 16, 16), "patch_embed.proj.bias": (dim,),
        "norm.weight": (dim,), "norm.bias": (dim,),
        "decoder_embed.weight": (dec_dim, dim), "decoder_embed.bias": (dec_dim,),
        "mask_token": (1, 1, dec_dim), "decoder_pos_embed": (1, tokens, dec_dim),
        "decoder_norm.weight": (dec_dim,), "decoder_norm.bias": (dec_dim,),
        "decoder_pred.weight": (pix, dec_dim), "decoder_pred.bias": (pix,),
    }  # fmt: skip
    for i in range(depth):
        shapes |= block(f"blocks.{i}", dim)
    for i in range(dec_depth):
        shapes |= block(f"decoder_blocks.{i}", dec_dim)
    return shapes


def test_official_base_checkpoint_loads_strict() -> None:
    shapes = official_shapes(768, 12)
    assert len(shapes) == 6 + 12 * 12 + 8 * 12 + 8
    gen = torch.Generator().manual_seed(0)
    ckpt = {"model": {k: torch.randn(s, generator=gen) for k, s in shapes.items()}}
    model = build_mae("base")
    result = model.load_state_dict(ckpt["model"], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    sd = model.state_dict()
    assert len(sd) == len(shapes)
    for key in ("pos_embed", "blocks.11.mlp.fc2.weight", "decoder_pred.bias"):
        assert torch.equal(sd[key], ckpt["model"][key])


def test_official_large_layout() -> None:
    with torch.device("meta"):  # shapes only: no 1.3 GB allocation
        model = build_mae("large")
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == official_shapes(1024, 24)
