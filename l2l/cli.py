"""Command line for multi-process runs: ``torchrun --nproc_per_node=N -m l2l.cli unlearn ...``.

Notebooks are the main entry point; this exists so that the same training and unlearning
loops run under torchrun + DDP (``l2l.dist``). Example (2 GPUs, paper scale)::

    torchrun --nproc_per_node=2 -m l2l.cli unlearn --scale paper --family mae \\
        --method li2024 --set data_root=/data --out li2024_mae.pt

The original is the family's cached / official original for the config (``--original
scratch``: a freshly initialised seeded model, for tests). Rank 0 writes the unlearned state
dict and the history next to it (``.csv``). ``complete`` runs generation and feature
extraction split over the processes (``l2l.dist.map_rows``) on a fresh seeded model.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import torch

from l2l import dist
from l2l.config import for_family, preset, replace
from l2l.data import load_data
from l2l.models import model_for
from l2l.unlearn import METHODS, unlearn


def _value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _config(args: argparse.Namespace):
    bad = [kv for kv in args.set if "=" not in kv or not kv.split("=", 1)[0]]
    if bad:
        raise SystemExit(f"--set takes FIELD=VALUE (e.g. --set unlearn__steps=10), got "
                         f"{', '.join(map(repr, bad))}")
    overrides = dict(kv.split("=", 1) for kv in args.set)
    return replace(for_family(preset(args.scale), args.family),
                   **{k: _value(v) for k, v in overrides.items()})


def _complete(args: argparse.Namespace) -> None:
    """Seeded fresh generator and domain network (no training): completions of the forget test
    images with the centre hole and their domain features, written by rank 0."""
    from l2l.data import make_mask
    from l2l.evaluation import complete
    from l2l.extractors import get_extractor
    from l2l.models import DomainClassifier

    cfg = _config(args)
    split = load_data(cfg)[1]
    torch.manual_seed(cfg.seed)
    model = model_for(cfg).eval()
    out = complete(model, split.forget_test, make_mask(cfg.eval.hole, cfg.data.image_size), cfg,
                   batch_size=8)
    ext = get_extractor("domain", cfg, net=DomainClassifier(n_classes=cfg.data.n_classes).eval())
    feats = ext.features(out)
    if dist.is_main():
        args.out.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"completions": out, "features": torch.from_numpy(feats)}, args.out)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m l2l.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("unlearn", help="unlearn the forget set from an original model")
    p.add_argument("--scale", default="small")
    p.add_argument("--family", default="mae")
    p.add_argument("--method", default="li2024", choices=METHODS)
    p.add_argument("--original", default="cached", choices=("cached", "scratch"))
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="config override, e.g. unlearn__steps=10 (repeatable)")
    p.add_argument("--out", required=True, type=Path)
    c = sub.add_parser("complete", help="complete the forget test images and extract features "
                                        "(generation and extraction split over the processes)")
    c.add_argument("--scale", default="small")
    c.add_argument("--family", default="mae")
    c.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    c.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)

    dist.init_from_env()
    if args.command == "complete":
        _complete(args)
        return
    cfg = _config(args)
    images, split = load_data(cfg)
    if args.original == "scratch":
        torch.manual_seed(cfg.seed)
        original = model_for(cfg).eval()
    else:
        from l2l.experiments import trained_generator

        original, _ = trained_generator(cfg, "original", images, split)
    model, hist = unlearn(original, args.method, forget=split.forget, retain=split.retain,
                          cfg=cfg, progress=dist.is_main())
    if dist.is_main():
        args.out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), args.out)
        hist.to_csv(args.out.with_suffix(".csv"), index=False)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
