"""MAGE (Li, T. et al., CVPR 2023) over VQGAN tokens: the "VQ-GAN" family of Li et al. (ICLR 2024).

Layout. The transformer's module tree and ``state_dict`` keys follow ``MaskedGenerativeEncoderViT``
of LTH14/mage (``models_mage.py``): ``token_emb`` (BERT-style: ``word_embeddings``,
``position_embeddings``, ``LayerNorm``), ``blocks``, ``norm``, ``decoder_embed``,
``decoder_pos_embed_learned``, ``decoder_blocks``, ``decoder_norm``, ``mlm_layer`` (``fc``, ``ln``,
``bias``), and the tokenizer under ``vqgan`` (see ``l2l.models.vqgan``). Keys that the released
code creates but never uses in a forward pass (``patch_embed``, ``cls_token``, ``pos_embed``,
``mask_token`` -- the decoder pads with the class token, ``pad_with_cls_token=True`` --,
``decoder_pos_embed``, ``decoder_pred``, the ``token_emb.position_ids`` buffer) are not built here;
``load_official`` drops them (``OFFICIAL_UNUSED``).

Ids. Vocabulary = codebook + class slots + 1: code ids [0, K), a "fake class" id K + 76 (1100 at
base) prepended to every sequence, and [MASK] = vocab - 1 (2024 at base). Sequences are
[B, 1 + L] with L = h * w tokens in row-major order.

Shared parameter (jpmorganchase/i2i_mage, ``models_mage.py``). As in the released code, the MLM
head multiplies by the *detached* encoder word-embedding matrix: training the encoder's
``token_emb`` also moves the decoder's output projection, although no gradient flows into it
through the decoder.

Deviations. The ViT blocks are ``l2l.models.vit.Block`` (same keys), which has no internal dropout,
as in the authors' i2i fork (block dropout 0.0; the upstream MAGE uses 0.1 on attention and MLP);
the 0.1 dropout of the token embedding is kept. The masked-token loss runs over the codebook
logits only at paper size, as released (``MAGESpec.loss_logits``). At paper size the completion
is blended in through the released Gaussian-blurred mask and the MaskGIT schedule counts all
tokens, as ``testpaint.py`` does (``MAGESpec.composite``, ``schedule_count``); the small sizes
paste ``x`` outside the hole exactly and count each image's masked tokens.

Masks: a pixel mask is float [B, 1, H, W] (1 = hole); a ``TokenMask`` holds bool [B, L] ``drop``
(removed from the encoder input) and ``masked`` ([MASK] id; drop implies masked).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from l2l.images import IMAGENET_MEAN
from l2l.models.vit import LN_EPS, Block
from l2l.models.vqgan import TOKENIZER_SIZES, VQGAN, VQGANSpec, load_official_vqgan, train_tokenizer

OptGenerator = torch.Generator | None
TOKEN_CHOICES = ("sample", "argmax", "mean")

# keys of mage-vitb-1600.pth['model'] that no forward pass of the released code reads
OFFICIAL_UNUSED = ("token_emb.position_ids", "patch_embed.proj.weight", "patch_embed.proj.bias",
                   "cls_token", "pos_embed", "mask_token", "decoder_pos_embed",
                   "decoder_pred.weight", "decoder_pred.bias")


class TokenMask(NamedTuple):
    """Train-time T (MAGE's masking, i2i_mage ``models_mage.py``): bool [B, L] ``drop`` and
    ``masked`` (True = applied)."""

    drop: Tensor
    masked: Tensor

    def take(self, index: Any) -> TokenMask:
        """Rows ``index`` of both masks (e.g. a slice of the batch)."""
        return TokenMask(self.drop[index], self.masked[index])


@dataclass(frozen=True)
class MAGESpec:
    """Architecture, masking and decoding settings of one MAGE size."""

    tokenizer: VQGANSpec
    embed_dim: int
    depth: int
    num_heads: int
    decoder_embed_dim: int
    decoder_depth: int
    decoder_num_heads: int
    mlp_ratio: float = 4.0
    class_slots: int = 1000
    fake_class_slot: int = 76  # fake class id = codebook size + 76 (1100 at base)
    dropout: float = 0.1  # token-embedding dropout
    init_std: float = 0.02  # word/position embedding init (also scales the tied MLM logits)
    mask_ratio_min: float = 0.5  # also the dropped share
    mask_ratio_max: float = 1.0
    mask_ratio_mu: float = 0.55
    mask_ratio_std: float = 0.25
    label_smoothing: float = 0.1
    token_margin: int = 1  # extra masked tokens around a pixel hole (testpaint.py: 1)
    hole_fill: tuple[float, float, float] | None = IMAGENET_MEAN  # None: image's known mean
    decode_steps: int = 20
    choice_temperature: float = 6.0  # Gumbel re-masking temperature, annealed by 1 - step/steps
    sample_temperature: float = 1.0  # token sampling temperature; 0 = argmax
    # how the tokens still masked at the last decoding step are chosen: "sample" (released
    # MaskGIT: at ``sample_temperature``), "argmax", or "mean" (small-scale option: the VQ decoder
    # gets the softmax-expected codebook vector, a blurrier but lower-MSE guess when the
    # transformer is uncertain); earlier steps always follow ``sample_temperature``
    token_choice: str = "sample"
    # the masked-token cross-entropy over "codebook" logits only (the released code:
    # ``logits[:, 1:, :codebook_size]``) or over the whole "vocab" (codes, class slots, [MASK]);
    # the small-scale sizes keep "vocab", the loss their committed runs were trained with
    loss_logits: str = "codebook"
    # the released parameter groups exempt every ``*.bias`` from weight decay (here only
    # ``mlm_layer.bias`` is not 1-D); the small sizes keep l2l's 1-D rule, as their runs did
    bias_no_decay: bool = True
    # the completion composite: "blurred" (released ``testpaint.py``: the generated image blended
    # into x through the hole dilated by ``blur_margin`` px and Gaussian-blurred with sigma
    # ``blur_sigma`` px) or "paste" (x outside the hole exactly; the small sizes)
    composite: str = "blurred"
    blur_margin: int = 14
    blur_sigma: float = 7.0
    # MaskGIT's re-masking count floor(n0 cos(pi/2 t/T)): n0 = "all" tokens of the image
    # (released: the early steps then fix one token each) or its "masked" tokens (small sizes)
    schedule_count: str = "all"

    def __post_init__(self) -> None:
        for dim, heads in ((self.embed_dim, self.num_heads),
                           (self.decoder_embed_dim, self.decoder_num_heads)):
            if dim % heads:
                raise ValueError(f"width {dim} is not divisible by {heads} heads")
        if not 0 <= self.fake_class_slot < self.class_slots:
            raise ValueError(f"fake_class_slot {self.fake_class_slot} not in [0, {self.class_slots})")
        if not 0.0 < self.mask_ratio_min <= self.mask_ratio_max <= 1.0:
            raise ValueError("need 0 < mask_ratio_min <= mask_ratio_max <= 1")
        if self.decode_steps < 1:
            raise ValueError("decode_steps must be >= 1")
        for name, allowed in (("loss_logits", ("codebook", "vocab")),
                              ("composite", ("blurred", "paste")),
                              ("schedule_count", ("all", "masked")),
                              ("token_choice", TOKEN_CHOICES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")

    @property
    def num_tokens(self) -> int:
        return self.tokenizer.grid_size**2

    @property
    def codebook_size(self) -> int:
        return self.tokenizer.n_embed

    @property
    def vocab_size(self) -> int:
        return self.codebook_size + self.class_slots + 1

    @property
    def fake_class_id(self) -> int:
        return self.codebook_size + self.fake_class_slot

    @property
    def mask_id(self) -> int:
        return self.vocab_size - 1


SIZES: dict[str, MAGESpec] = {
    "smoke": MAGESpec(TOKENIZER_SIZES["smoke"], 32, 1, 2, 32, 1, 2, class_slots=1,
                      fake_class_slot=0, decode_steps=4, loss_logits="vocab",
                      bias_no_decay=False, composite="paste", schedule_count="masked"),
    # small scale (chosen for hole MSE): no token margin, hole filled with the image's known mean
    # before tokenising, one decoding pass with softmax-expected codebook vectors ("mean").
    # Measured (64-code tokenizer of 2000 steps, 1200 transformer steps, 500 + 500 test images,
    # centre_half): hole MSE 0.0212 / 0.0140 (forget / retain) vs 0.0234 / 0.0148 for a
    # per-image mean-colour fill; 4 sampled decodes averaged in pixel space give 0.0233 / 0.0170,
    # one sampled decode is worse still (a sample, not a conditional mean).
    "tiny": MAGESpec(TOKENIZER_SIZES["tiny"], 128, 4, 4, 64, 2, 4, class_slots=1,
                     fake_class_slot=0, token_margin=0, hole_fill=None, decode_steps=1,
                     choice_temperature=0.0, sample_temperature=0.0, token_choice="mean",
                     loss_logits="vocab", bias_no_decay=False, composite="paste",
                     schedule_count="masked"),
    # small scale since the zoo (chosen for hole FID, not MSE): the 8 x 8-token tokenizer trained
    # with the adversarial term (TOKENIZER_SIZES["small"]), the tiny transformer (2400 steps), and
    # sampled MaskGIT decoding in 8 steps at token temperature 0.5 (Gumbel re-masking 4.5), about
    # 11 s per 500 completions on one thread. Hole-FID ratio to the per-image mean fill on fresh
    # crops of the training photos (500 forget + 500 retain; recipe
    # FAMILY_RECIPES["small"]["vqgan"]), half forget / half retain / quarter forget / quarter
    # retain: 0.34 / 0.45 / 0.35 / 0.55; temperature 0.7: 0.32 / 0.44 / 0.36 / 0.55; 1.0: 0.31 /
    # 0.48 / 0.39 / 0.62. Hole MSE 0.7-1.0x the mean fill's (a sample, not the conditional
    # mean). The earlier 16 x 16-token L2 tokenizer with 1200 transformer steps reached 0.67 on
    # retain centre_quarter at 60 s per 500 completions. On the test tiles (the zoo's model)
    # these crops were optimistic: 0.47 / 0.57 / 0.61 / 0.61, the retrain 0.65 / 0.62 on
    # retain (half / quarter), short of the 0.6 bar; temperatures 0.3-1.0: worst cell 0.62-0.67.
    "small": MAGESpec(TOKENIZER_SIZES["small"], 128, 4, 4, 64, 2, 4, class_slots=1,
                      fake_class_slot=0, token_margin=0, hole_fill=None, decode_steps=8,
                      choice_temperature=4.5, sample_temperature=0.5, token_choice="sample",
                      loss_logits="vocab", bias_no_decay=False, composite="paste",
                      schedule_count="masked"),
    "base": MAGESpec(TOKENIZER_SIZES["base"], 768, 12, 12, 768, 8, 16),  # mage_vit_base_patch16
}


class TokenEmbedding(nn.Module):
    """Word + learned position embedding, LayerNorm, dropout: ids [B, N] -> [B, N, D]."""

    def __init__(self, vocab: int, dim: int, positions: int, dropout: float,
                 init_std: float = 0.02) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, dim)
        self.position_embeddings = nn.Embedding(positions, dim)
        self.LayerNorm = nn.LayerNorm(dim, eps=LN_EPS)  # official (TensorFlow-style) name
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.word_embeddings.weight, std=init_std)
        nn.init.normal_(self.position_embeddings.weight, std=init_std)

    def forward(self, ids: Tensor) -> Tensor:
        x = self.word_embeddings(ids) + self.position_embeddings.weight[: ids.shape[1]]
        return self.dropout(self.LayerNorm(x))


class MlmLayer(nn.Module):
    """Decoder features [B, N, Dd] -> logits [B, N, V] through the (tied) word embeddings."""

    def __init__(self, feat_dim: int, word_dim: int, vocab: int) -> None:
        super().__init__()
        self.fc = nn.Linear(feat_dim, word_dim)
        self.ln = nn.LayerNorm(word_dim)  # default eps 1e-5, as released
        self.bias = nn.Parameter(torch.zeros(1, 1, vocab))

    def forward(self, x: Tensor, word_embeddings: Tensor) -> Tensor:
        return self.ln(F.gelu(self.fc(x))) @ word_embeddings.t() + self.bias


def _rand(shape: tuple[int, ...], generator: OptGenerator, device: torch.device) -> Tensor:
    # draw on the generator's device so that a CPU generator also drives a CUDA model
    where = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=where).to(device)


def _gumbel(shape: tuple[int, ...], generator: OptGenerator, device: torch.device) -> Tensor:
    u = _rand(shape, generator, device).clamp(1e-20, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


class MAGE(nn.Module):
    """MAGE with the shared I2I interface; see the module docstring for ids and masks."""

    family = "vqgan"

    def __init__(self, spec: MAGESpec) -> None:
        super().__init__()
        self.spec = s = spec
        self.vqgan = VQGAN(s.tokenizer)
        self.vqgan.requires_grad_(False)  # frozen pre-processing (train_tokenizer unfreezes)
        n = 1 + s.num_tokens
        # encoder
        self.token_emb = TokenEmbedding(s.vocab_size, s.embed_dim, n, s.dropout, s.init_std)
        self.blocks = nn.ModuleList(Block(s.embed_dim, s.num_heads, s.mlp_ratio)
                                    for _ in range(s.depth))
        self.norm = nn.LayerNorm(s.embed_dim, eps=LN_EPS)
        # decoder
        self.decoder_embed = nn.Linear(s.embed_dim, s.decoder_embed_dim)
        self.decoder_pos_embed_learned = nn.Parameter(torch.zeros(1, n, s.decoder_embed_dim))
        self.decoder_blocks = nn.ModuleList(
            Block(s.decoder_embed_dim, s.decoder_num_heads, s.mlp_ratio)
            for _ in range(s.decoder_depth))
        self.decoder_norm = nn.LayerNorm(s.decoder_embed_dim, eps=LN_EPS)
        self.mlm_layer = MlmLayer(s.decoder_embed_dim, s.embed_dim, s.vocab_size)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.normal_(self.decoder_pos_embed_learned, std=0.02)
        for part in (self.blocks, self.norm, self.decoder_embed, self.decoder_blocks,
                     self.decoder_norm, self.mlm_layer, self.token_emb.LayerNorm):
            for m in part.modules():
                if isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.LayerNorm):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

    # ---------------------------------------------------------------- parameter groups
    def encoder_parameters(self) -> list[nn.Parameter]:
        """token_emb (word + position embeddings, LayerNorm), blocks, norm."""
        return [p for m in (self.token_emb, self.blocks, self.norm) for p in m.parameters()]

    def decoder_parameters(self) -> list[nn.Parameter]:
        """decoder_embed, decoder_pos_embed_learned, decoder_blocks, decoder_norm, mlm_layer."""
        parts = (self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.mlm_layer)
        return [self.decoder_pos_embed_learned] + [p for m in parts for p in m.parameters()]

    def tokenizer_parameters(self) -> list[nn.Parameter]:
        """The VQGAN tokenizer (frozen pre-processing)."""
        return list(self.vqgan.parameters())

    # ---------------------------------------------------------------- tokens and masks
    @torch.no_grad()
    def tokenize(self, x: Tensor) -> Tensor:
        """float [B, 3, H, W] in [0, 1] -> long [B, L] code ids (frozen tokenizer, no grad)."""
        return self.vqgan.encode_tokens(x).flatten(1)

    def token_mask(self, pixel_mask: Tensor) -> Tensor:
        """Pixel mask float [B, 1, H, W] (1 = hole) -> bool [B, L] (True = [MASK]).

        A token is masked if any of its pixels is in the hole, then the mask is dilated by
        ``spec.token_margin`` tokens (testpaint.py uses 1).
        """
        size, f, m = self.spec.tokenizer.img_size, self.spec.tokenizer.downsample, self.spec.token_margin
        if pixel_mask.ndim != 4 or tuple(pixel_mask.shape[1:]) != (1, size, size):
            raise ValueError(f"pixel mask must be [B, 1, {size}, {size}], got {list(pixel_mask.shape)}")
        grid = F.max_pool2d((pixel_mask > 0.5).float(), f, f)
        if m > 0:
            grid = F.max_pool2d(grid, 2 * m + 1, stride=1, padding=m)
        return grid.flatten(1) > 0.5

    def input_tokens(self, x: Tensor, pixel_mask: Tensor) -> Tensor:
        """Tokens of x with the hole filled by ``spec.hole_fill`` (what completion starts from):
        a fixed colour (testpaint.py: the ImageNet mean) or, if None, each image's mean colour
        over its known pixels."""
        hole = (pixel_mask > 0.5).to(x.dtype)
        if self.spec.hole_fill is None:
            known = 1 - hole
            fill = (x * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp_min(1)
        else:
            fill = torch.tensor(self.spec.hole_fill, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return self.tokenize(x * (1 - hole) + fill * hole)

    def sample_mask(self, batch: int, *, generator: OptGenerator = None,
                    device: torch.device | str | None = None) -> TokenMask:
        """MAGE's train-time T: one rate r ~ N(mu, std) truncated to [min, max] per batch; per
        sample a random order whose first ceil(L * min) positions are dropped and first
        ceil(L * r) masked (as the released i2i_mage ``models_mage.py``)."""
        s, n = self.spec, self.spec.num_tokens
        device = torch.device(device) if device is not None else self.norm.weight.device
        a, b = ((v - s.mask_ratio_mu) / s.mask_ratio_std for v in (s.mask_ratio_min, s.mask_ratio_max))
        lo, hi = torch.special.ndtr(torch.tensor([a, b], dtype=torch.float64))
        u = _rand((1,), generator, torch.device("cpu")).double()
        r = s.mask_ratio_mu + s.mask_ratio_std * torch.special.ndtri(lo + u * (hi - lo))
        r = float(r.clamp(s.mask_ratio_min, s.mask_ratio_max))
        n_drop, n_mask = math.ceil(n * s.mask_ratio_min), min(n, math.ceil(n * r))
        rank = _rand((batch, n), generator, device).argsort(1).argsort(1)
        return TokenMask(drop=rank < n_drop, masked=rank < n_mask)

    def _masks(self, mask: TokenMask | Tensor) -> tuple[Tensor | None, Tensor]:
        if isinstance(mask, TokenMask):
            return mask.drop, mask.masked
        return None, self.token_mask(mask)

    # ---------------------------------------------------------------- encoder / decoder
    def forward_encoder(self, ids: Tensor, drop: Tensor | None = None) -> Tensor:
        """ids long [B, L] ([MASK] already applied) -> latent [B, 1 + K, D] after the final norm.

        The fake-class id is prepended; positions with ``drop`` True (same count per row) are
        removed after the embedding, the rest keep their order.
        """
        cls = torch.full_like(ids[:, :1], self.spec.fake_class_id)
        x = self.token_emb(torch.cat([cls, ids], dim=1))
        if drop is not None:
            counts = drop.sum(1)
            if (counts != counts[0]).any():
                raise ValueError("every row of `drop` must remove the same number of tokens")
            keep = F.pad(~drop, (1, 0), value=True)
            x = x[keep].view(x.shape[0], -1, x.shape[-1])
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def forward_decoder(self, z: Tensor, drop: Tensor | None, masked: Tensor) -> Tensor:
        """Latent [B, 1 + K, D] -> logits [B, 1 + L, vocab]. Dropped and masked positions are
        filled with the decoded class token (the released ``pad_with_cls_token``)."""
        y = self.decoder_embed(z)
        b, n = masked.shape
        pad = y[:, :1].expand(b, n + 1, y.shape[-1])
        if drop is not None:
            keep = F.pad(~drop, (1, 0), value=True)
            seq = pad.clone()
            seq[keep] = y.reshape(-1, y.shape[-1])
        else:
            seq = y
        seq = torch.where(F.pad(masked, (1, 0), value=False)[..., None], pad, seq)
        seq = seq + self.decoder_pos_embed_learned
        for blk in self.decoder_blocks:
            seq = blk(seq)
        return self.mlm_layer(self.decoder_norm(seq), self.token_emb.word_embeddings.weight.detach())

    def forward_loss(self, logits: Tensor, target: Tensor, masked: Tensor) -> Tensor:
        """Label-smoothed cross-entropy of logits [B, 1 + L, V] against codes [B, L], averaged
        over the masked positions; over the codebook logits only when ``spec.loss_logits`` is
        "codebook" (as released), else over all V."""
        b, n = target.shape
        out = logits[:, 1:]
        if self.spec.loss_logits == "codebook":
            out = out[..., : self.spec.codebook_size]
        per = F.cross_entropy(out.reshape(b * n, -1), target.reshape(-1),
                              label_smoothing=self.spec.label_smoothing, reduction="none")
        m = masked.to(per.dtype).view(-1)
        return (per * m).sum() / m.sum().clamp_min(1)

    def training_loss(self, x: Tensor, *, generator: OptGenerator = None) -> Tensor:
        """MAGE pre-training loss of x float [B, 3, H, W] in [0, 1] under ``sample_mask``."""
        tokens = self.tokenize(x)
        drop, masked = self.sample_mask(len(x), generator=generator, device=x.device)
        ids = tokens.masked_fill(masked, self.spec.mask_id)
        logits = self.forward_decoder(self.forward_encoder(ids, drop), drop, masked)
        return self.forward_loss(logits, tokens, masked)

    # ---------------------------------------------------------------- I2I interface
    def encode(self, x: Tensor, mask: TokenMask | Tensor) -> Tensor:
        """Encoder latent of x float [B, 3, H, W] in [0, 1] (tokenizer frozen, no grad).

        ``mask`` is a pixel mask [B, 1, H, W] (test path: hole filled with ``hole_fill`` before
        tokenising, masked tokens -> [MASK], nothing dropped; returns [B, 1 + L, D]) or a
        ``TokenMask`` (train path; returns [B, 1 + L - dropped, D]).
        """
        drop, masked = self._masks(mask)
        tokens = self.tokenize(x) if drop is not None else self.input_tokens(x, mask)
        return self.forward_encoder(tokens.masked_fill(masked, self.spec.mask_id), drop)

    def decode(self, z: Tensor, mask: TokenMask | Tensor, *, tokens: Tensor | None = None) -> Tensor:
        """One-pass image from a latent of ``encode`` with the same ``mask``.

        Masked positions take the argmax code of the MLM logits. Known positions take
        ``tokens`` (long [B, L] or [B, h, w], e.g. ``input_tokens(x, mask)``) when given;
        otherwise the argmax too (the decoder is not trained on them, so pass ``tokens``).

        Returns:
            float [B, 3, H, W] in [0, 1] (the whole VQ-decoded image, not composited).
        """
        drop, masked = self._masks(mask)
        k, g = self.spec.codebook_size, self.spec.tokenizer.grid_size
        pred = self.forward_decoder(z, drop, masked)[:, 1:, :k].argmax(-1)
        if tokens is not None:
            pred = torch.where(masked, pred, tokens.reshape(pred.shape))
        return self.vqgan.decode_tokens(pred.view(-1, g, g))

    @torch.no_grad()
    def complete_tokens(self, x: Tensor, mask: Tensor, *, generator: OptGenerator = None) -> Tensor:
        """MaskGIT iterative decoding of the masked tokens (as the released i2i_mage ``testpaint.py``).

        Step t = 1..T (T = ``decode_steps``): predict every [MASK] token (argmax if
        ``sample_temperature`` is 0, else a sample at that temperature), then re-mask the
        floor(n0 * cos(pi/2 * t/T)) least confident new tokens (n0 = masked count of the image),
        confidence = log p + ``choice_temperature`` * (1 - t/T) * Gumbel noise. Known tokens are
        never changed; the last step fills every remaining [MASK] (``token_choice`` "argmax" or
        "mean": the argmax code; "sample": a sample as in the earlier steps). With
        ``schedule_count = "all"`` (released) n0 is the image's token count.

        Args:
            x: float [B, 3, H, W] in [0, 1]; mask: pixel mask float [B, 1, H, W] (1 = hole).
            generator: seeds sampling and Gumbel noise.

        Returns:
            long [B, L] code ids; equal to ``input_tokens(x, mask)`` where ``token_mask`` is False.
        """
        return self._maskgit(x, mask, generator)[0]

    def _maskgit(self, x: Tensor, mask: Tensor,
                 generator: OptGenerator) -> tuple[Tensor, Tensor, Tensor]:
        """``complete_tokens`` plus the last step's code logits [B, L, K] and its bool [B, L]
        still-masked positions."""
        s = self.spec
        known = self.input_tokens(x, mask)
        masked = self.token_mask(mask)
        ids = known.masked_fill(masked, s.mask_id)
        n0 = masked.sum(1) if s.schedule_count == "masked" else torch.full_like(masked.sum(1),
                                                                               masked.shape[1])
        for step in range(s.decode_steps):
            unknown = ids == s.mask_id
            logits = self.forward_decoder(self.forward_encoder(ids), None, unknown)
            logits = logits[:, 1:, : s.codebook_size].float()
            last = step == s.decode_steps - 1
            if s.sample_temperature > 0 and not (last and s.token_choice != "sample"):
                noisy = logits / s.sample_temperature + _gumbel(logits.shape, generator, x.device)
                sampled = noisy.argmax(-1)
            else:
                sampled = logits.argmax(-1)
            sampled = torch.where(unknown, sampled, ids)
            ratio = (step + 1) / s.decode_steps
            if last:
                return sampled, logits, unknown
            logp = logits.log_softmax(-1).gather(-1, sampled[..., None])[..., 0]
            noise = _gumbel(logp.shape, generator, x.device)
            conf = logp + s.choice_temperature * (1 - ratio) * noise
            conf = conf.masked_fill(~unknown, math.inf)
            n_unknown = unknown.sum(1)
            n_remask = torch.floor(n0 * math.cos(math.pi / 2 * ratio)).long()
            n_remask = torch.minimum(torch.clamp(torch.minimum(n_unknown - 1, n_remask), min=1),
                                     n_unknown)
            rank = conf.argsort(1).argsort(1)  # 0 = least confident
            ids = torch.where(rank < n_remask[:, None], s.mask_id, sampled)
        raise AssertionError("unreachable")

    @torch.no_grad()
    def complete(self, x: Tensor, mask: Tensor, *, generator: OptGenerator = None) -> Tensor:
        """Inpaint the hole: MaskGIT tokens -> VQ decoder, pasted into x. With ``token_choice``
        "mean" the tokens still masked at the last step enter the VQ decoder as their
        softmax-expected codebook vectors (deterministic if ``sample_temperature`` and
        ``choice_temperature`` are 0 or ``decode_steps`` is 1).

        Args:
            x: float [B, 3, H, W] in [0, 1]; mask: pixel mask float [B, 1, H, W] (1 = hole).
            generator: seeds the decoding (same seed -> same output).

        Returns:
            float [B, 3, H, W] in [0, 1]; with ``composite = "paste"`` pixels outside the hole
            equal ``x`` exactly; with "blurred" (released) the output is blended in through
            ``blurred_mask`` (pixels beyond the dilated, blurred hole equal ``x``).
        """
        g = self.spec.tokenizer.grid_size
        ids, logits, unknown = self._maskgit(x, mask, generator)
        if self.spec.token_choice == "mean":
            codebook = self.vqgan.quantize.embedding.weight
            z = torch.where(unknown[..., None], logits.softmax(-1).to(codebook.dtype) @ codebook,
                            codebook[ids])
            out = self.vqgan.decoder(z.view(-1, g, g, z.shape[-1]).permute(0, 3, 1, 2))
        else:
            out = self.vqgan.decode_tokens(ids.view(-1, g, g))
        if self.spec.composite == "blurred":
            soft = blurred_mask(mask, self.spec.blur_margin, self.spec.blur_sigma)
            return (soft * out + (1 - soft) * x).clamp(0, 1)
        return torch.where(mask > 0.5, out, x).clamp(0, 1)

    def train_tokenizer(self, images: Any, *, steps: int, batch_size: int = 64,
                        lr: float = 2e-3, generator: OptGenerator = None,
                        adversarial: float = 0.0, progress: bool = True) -> pd.DataFrame:
        """Train the VQGAN (``l2l.models.vqgan.train_tokenizer``), then freeze it.

        Args:
            images: uint8/float [N, 3, S, S] tensor or indexable data set.

        Returns:
            The tokenizer's history DataFrame.
        """
        self.vqgan.requires_grad_(True)
        try:
            history = train_tokenizer(self.vqgan, images, steps=steps, batch_size=batch_size,
                                      lr=lr, generator=generator, adversarial=adversarial,
                                      progress=progress)
        finally:
            self.vqgan.requires_grad_(False)
            self.vqgan.eval()
        return history


def blurred_mask(mask: Tensor, margin: int, sigma: float) -> Tensor:
    """The released composite weight: the hole (float [B, 1, H, W], 1 = hole) dilated by
    ``margin`` px, then Gaussian-blurred with std ``sigma`` px (kernel 4 sigma + 1, edges
    replicated); values in [0, 1]."""
    m = (mask > 0.5).float()
    if margin > 0:
        m = F.max_pool2d(m, 2 * margin + 1, stride=1, padding=margin)
    radius = int(2 * sigma)
    if radius < 1:
        return m
    t = torch.arange(-radius, radius + 1, dtype=m.dtype, device=m.device)
    k = torch.exp(-t**2 / (2 * sigma**2))
    k = k / k.sum()
    m = F.conv2d(F.pad(m, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    m = F.conv2d(F.pad(m, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    return m.clamp(0, 1)


def build_mage(size: str, **overrides: Any) -> MAGE:
    """A freshly initialised MAGE of a named size; ``overrides`` replace ``MAGESpec`` fields
    (``tokenizer`` may be a ``VQGANSpec`` or a tokenizer size name).

    Raises:
        ValueError: unknown ``size`` (the message lists the known ones).
    """
    if size not in SIZES:
        raise ValueError(f"unknown MAGE size {size!r}; known sizes: {', '.join(SIZES)}")
    if isinstance(overrides.get("tokenizer"), str):
        overrides["tokenizer"] = TOKENIZER_SIZES[overrides["tokenizer"]]
    return MAGE(dataclasses.replace(SIZES[size], **overrides))


def load_official(model: MAGE, checkpoint: Mapping[str, Any], *,
                  tokenizer: Mapping[str, Any] | None = None) -> list[str]:
    """Strictly load ``mage-vitb-1600.pth`` (the dict or its ``"model"`` entry) into ``model``.

    ``OFFICIAL_UNUSED`` keys are dropped; every other key must match. The released scripts load
    this file strictly into a model holding the tokenizer, so it is expected to contain
    ``vqgan.*`` keys (inferred, not inspected); if it has none, the tokenizer must come from
    ``tokenizer`` (``vqgan_jax_strongaug.ckpt``), which also overrides checkpoint ``vqgan.*``.

    Returns:
        The dropped keys that were present.

    Raises:
        RuntimeError: missing or unexpected keys, or shape mismatches.
    """
    state = dict(checkpoint.get("model", checkpoint))
    dropped = [k for k in OFFICIAL_UNUSED if state.pop(k, None) is not None]
    has_vqgan = any(k.startswith("vqgan.") for k in state)
    if tokenizer is not None:
        state = {k: v for k, v in state.items() if not k.startswith("vqgan.")}
        has_vqgan = False
    if not has_vqgan and tokenizer is None:
        raise RuntimeError("the checkpoint has no vqgan.* keys; pass tokenizer=<vqgan state dict>")
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if has_vqgan or not k.startswith("vqgan.")]
    if missing or unexpected:
        raise RuntimeError(f"official MAGE layout mismatch: missing {missing}, unexpected {unexpected}")
    if tokenizer is not None:
        load_official_vqgan(model.vqgan, tokenizer)
    return dropped
