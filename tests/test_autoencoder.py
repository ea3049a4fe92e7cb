import pytest
import torch

from l2l.data import make_mask
from l2l.models import build_model
from l2l.models.autoencoder import AutoEncoder


@pytest.fixture
def ae() -> AutoEncoder:
    torch.manual_seed(0)
    return build_model("autoencoder", "smoke")


def test_shapes_and_range(ae):
    x = torch.rand(4, 3, 32, 32)
    mask = make_mask("centre_half", 32)
    z = ae.encode(x, mask)
    assert z.shape == (4, 16, 4, 4)  # bottleneck at 1/8 resolution
    out = ae.decode(z)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1


def test_cifar10_size_matches_spec():
    ae = build_model("autoencoder", "cifar10")
    assert ae.encode(torch.rand(1, 3, 32, 32), None).shape == (1, 128, 4, 4)
    convs = [m for m in ae.encoder if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (3, 32, (4, 4), (2, 2)), (32, 64, (4, 4), (2, 2)), (64, 128, (4, 4), (2, 2))]


def test_complete_keeps_known_region(ae):
    x = torch.rand(3, 3, 32, 32)
    mask = make_mask("centre_quarter", 32)
    out = ae.complete(x, mask)
    known = mask.expand_as(out[:, :1]).expand_as(out) < 0.5
    assert torch.equal(out[known], x[known]) and not torch.equal(out, x)


def test_encoder_sees_only_the_masked_input(ae):
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    mask = make_mask("centre_half", 32)
    y = torch.where(mask > 0.5, y, x)  # same context, different hole content
    assert torch.equal(ae.encode(x, mask), ae.encode(y, mask))


def test_training_lowers_loss(ae):
    # smooth images (white noise has nothing to learn beyond its mean)
    x = torch.nn.functional.interpolate(torch.rand(16, 3, 4, 4), size=32, mode="bilinear")
    opt = torch.optim.Adam(ae.parameters(), lr=1e-2)
    first = ae.training_loss(x).item()
    for _ in range(60):
        loss = ae.training_loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.8 * first


def test_parameter_split(ae):
    enc = {id(p) for p in ae.encoder_parameters()}
    dec = {id(p) for p in ae.decoder_parameters()}
    assert not enc & dec and enc | dec == {id(p) for p in ae.parameters()}


def test_identity_task_and_unknown_size():
    ae = build_model("autoencoder", "smoke", train_mask="none")
    assert ae.sample_mask(2) is None
    with pytest.raises(ValueError, match="unknown autoencoder size 'huge'"):
        build_model("autoencoder", "huge")
    with pytest.raises(ValueError, match="unknown model family 'gan'"):
        build_model("gan", "tiny")


def test_small_size_trains_on_centre_holes_of_every_test_size():
    model = build_model("autoencoder", "small")
    masks = model.sample_mask(200, generator=torch.Generator().manual_seed(0))
    sides = masks[:, 0].sum((1, 2)).sqrt().round().int()
    assert set(sides.tolist()) == {8, 10, 12, 14, 16}
    again = model.sample_mask(200, generator=torch.Generator().manual_seed(0))
    assert torch.equal(masks, again)  # drawn from the loop's generator, nothing else
    fixed = build_model("autoencoder", "cifar10").sample_mask(3)
    assert fixed[:, 0].sum((1, 2)).tolist() == [256.0] * 3  # centre_half, as before
