"""Li et al.'s released metric protocol at paper scale, where it differs from l2l's default.

Their evaluation (the released ``eval.py`` / ``eval365.py`` and ``clip_embed.py``, which write
``fid_is_eval*.csv`` and ``clip_cosine_*.csv``) scores FID with clean-fid's Inception
(``l2l.extractors`` "inception"), but:

* **IS** comes from another network, chosen per data set by ``eval.is_network``:
  - ``inception_tv_released`` (ImageNet, as released): torchvision's Inception-V3
    ``IMAGENET1K_V1`` with ``transform_input=False``; images Resize(256, 256), then normalised
    with the **CIFAR-10** mean / std (0.4914, 0.4822, 0.4465) / (0.2023, 0.1994, 0.2010) (sic,
    the released code's quirk), then bilinearly upsampled to 299;
  - ``inception_tv`` (the standard reading of the same weights, labelled as l2l's variant):
    torchvision's own preprocessing of those weights, Resize(342) + CentreCrop(299) + ImageNet
    normalisation;
  - ``places_resnet50`` (Places-365, as released): the CSAIL ResNet-50 trained on Places365
    (``resnet50_places365.pth.tar``, 365-way softmax); Resize(256, 256) + CentreCrop(224) +
    ImageNet normalisation.
  Each is a file the user places in ``<data_root>/checkpoints/`` (never downloaded; sha256
  recorded in every sidecar).
* **The ImageNet FID reference** (``eval.fid_reference``) is the original validation JPEGs at
  full resolution (``full_resolution``, as released: clean-fid squeezes each whole photo to
  299 x 299), not the Resize + CentreCrop test images the models complete (``matched``, l2l's
  default and the Places protocol). With ``full_resolution`` the score tables keep the matched
  number too, as metric ``fidmatched``.

Resizes run on tensors (bilinear / bicubic with antialiasing), not through PIL: values differ
from the released code's PIL pipeline in the last digits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from l2l.config import IS_NETWORKS, RunConfig
from l2l.images import IMAGENET_MEAN, IMAGENET_STD, normalize, to_float
from l2l.extractors import Extractor
from l2l.io import file_sha256

TV_INCEPTION_FILE = "inception_v3_google-0cc3c7bd.pth"  # torchvision's IMAGENET1K_V1 file name
PLACES_RESNET_FILE = "resnet50_places365.pth.tar"
FILES = {"inception_tv_released": TV_INCEPTION_FILE, "inception_tv": TV_INCEPTION_FILE,
         "places_resnet50": PLACES_RESNET_FILE}
SOURCES = {
    TV_INCEPTION_FILE: "torchvision's Inception_V3_Weights.IMAGENET1K_V1 "
                       "(download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth)",
    PLACES_RESNET_FILE: "the Places365 CNNs of CSAIL (places2.csail.mit.edu/models_places365/"
                        "resnet50_places365.pth.tar; github.com/CSAILVision/places365)",
}
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
PREPROCESS = {
    "inception_tv_released": "as released: Resize(256, 256) bilinear, CIFAR-10 mean/std (sic), "
                             "bilinear upsample to 299",
    "inception_tv": "standard: Resize(342) bilinear, CentreCrop(299), ImageNet mean/std",
    "places_resnet50": "as released: Resize(256, 256) bilinear, CentreCrop(224), ImageNet mean/std",
}


def weights_path(name: str, cfg: RunConfig) -> Path:
    """``<data_root>/checkpoints/<file>`` of IS network ``name``, or one error saying where the
    file comes from."""
    from l2l.io import data_path

    if name not in IS_NETWORKS:
        raise ValueError(f"unknown eval.is_network {name!r}; choose one of {', '.join(IS_NETWORKS)}"
                         " or '' (the FID extractor's own class outputs)")
    path = data_path(cfg, f"checkpoints/{FILES[name]}")
    if not path.is_file():
        raise FileNotFoundError(f"IS network {name!r} needs {path}: download "
                                f"{SOURCES[FILES[name]]} yourself and place it there, or pass "
                                f"DATA_ROOT; l2l never downloads weights")
    return path


def _centre(x: torch.Tensor, size: int) -> torch.Tensor:
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    return x[..., top:top + size, left:left + size]


def is_preprocess(name: str, x: torch.Tensor) -> torch.Tensor:
    """Network input of IS network ``name`` for x float [B, 3, H, W] in [0, 1] (module doc)."""
    if name == "inception_tv_released":
        x = F.interpolate(x, size=(256, 256), mode="bilinear", antialias=True, align_corners=False)
        x = normalize(x.clamp(0, 1), CIFAR_MEAN, CIFAR_STD)
        return F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    if name == "inception_tv":
        h, w = x.shape[-2:]
        size = (max(299, round(h * 342 / min(h, w))), max(299, round(w * 342 / min(h, w))))
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        return normalize(_centre(x.clamp(0, 1), 299), IMAGENET_MEAN, IMAGENET_STD)
    if name == "places_resnet50":
        x = F.interpolate(x, size=(256, 256), mode="bilinear", antialias=True, align_corners=False)
        return normalize(_centre(x.clamp(0, 1), 224), IMAGENET_MEAN, IMAGENET_STD)
    raise ValueError(f"unknown IS network {name!r}; choose one of {', '.join(IS_NETWORKS)}")


def build_is_network(name: str, state: dict[str, Any] | None = None) -> torch.nn.Module:
    """The torchvision architecture of ``name`` (random weights unless ``state``, loaded
    strictly; a ``state_dict`` entry and ``module.`` prefixes, as in the CSAIL file, are
    accepted)."""
    from torchvision.models import inception_v3, resnet50

    if name == "places_resnet50":
        net = resnet50(weights=None, num_classes=365)
    else:
        net = inception_v3(weights=None, aux_logits=True, transform_input=False,
                           init_weights=False)
    if state is not None:
        state = state.get("state_dict", state)
        net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
    return net.eval()


def is_network(name: str, cfg: RunConfig, *, device: str, batch_size: int = 32) -> Extractor:
    """IS network ``name`` as an ``Extractor``: features = logits, probs = their softmax."""
    from l2l.io import CheckpointError

    path = weights_path(name, cfg)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net = build_is_network(name, state).to(device)
    except Exception as exc:
        raise CheckpointError(f"{path} is not the {name} weights: {exc}") from exc
    net.requires_grad_(False)

    @torch.no_grad()
    def run(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        logits = torch.cat([net(is_preprocess(name, x[i:i + batch_size].to(device))).double().cpu()
                            for i in range(0, len(x), batch_size)])
        return logits.numpy(), torch.softmax(logits, dim=1).numpy()

    info = {"weights": str(path), "weights_sha256": file_sha256(path),
            "source": SOURCES[path.name], "preprocess": PREPROCESS[name], "output": "softmax"}
    return Extractor(name, run, info)


def with_is_network(fid: Extractor, is_net: Extractor) -> Extractor:
    """One extractor: features (FID, KID, cosine) from ``fid``, class probabilities (IS) from
    ``is_net``; provenance names both."""

    def run(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        return fid.run(x)[0], is_net.run(x)[1]

    info = {**fid.info, "is_network": is_net.provenance()}
    return Extractor(fid.name, run, info, run_features=lambda x: fid.run(x)[0])


def full_resolution_features(files: list[Path], extractor: Extractor) -> np.ndarray:
    """The released ImageNet FID reference: ``extractor`` features of each file as it is on disk
    (whole photo, its own size; read one at a time), float64 [len(files), D]."""
    from PIL import Image  # a torchvision dependency

    out = []
    for f in files:
        with Image.open(f) as img:
            x = torch.from_numpy(np.asarray(img.convert("RGB")).copy()).permute(2, 0, 1)
        out.append(extractor.features(to_float(x.unsqueeze(0))))
    return np.concatenate(out)
