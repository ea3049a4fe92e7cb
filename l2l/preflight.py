"""Before any paper-scale compute: every missing input at once (``make paper`` runs this first).

``missing_inputs(cfg)`` checks, for every family recipe of the preset, the data set (the files of
Li et al.'s official lists for ImageNet-1K / Places-365, the python batches of CIFAR-10), the
official checkpoint, the IS network of ``eval.is_network`` (``l2l.protocol``) and the
feature-extractor weights of ``cfg.eval.extractor``; each problem is
one entry that says what is missing and where it comes from. ``check`` raises one
FileNotFoundError listing them all. Nothing is read beyond file existence and one sha256 of the
extractor weights; nothing is downloaded.

    python -m l2l.preflight --scale paper --data-root /data
"""

from __future__ import annotations

import argparse
from pathlib import Path

from l2l.config import FAMILIES, RunConfig, for_family, preset
from l2l.data import CIFAR_FILES, FOLDER_DATASETS, official_files
from l2l.io import data_path


def _cifar10(cfg: RunConfig) -> None:
    folder = data_path(cfg, "cifar10") / "cifar-10-batches-py"
    missing = [f for f in CIFAR_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"CIFAR-10: {', '.join(missing)} missing in {folder} (the python "
                                f"version of the data set, cs.toronto.edu/~kriz/cifar.html)")


def missing_inputs(cfg: RunConfig, *, families: tuple[str, ...] = FAMILIES) -> list[str]:
    """One line per missing input of ``cfg``'s families (data, checkpoints, IS networks,
    extractor)."""
    from l2l.extractors import find_clip_weights, find_inception_weights
    from l2l.pretrained import checkpoint_path
    from l2l.protocol import weights_path

    problems, seen = [], set()
    for family in families:
        fcfg = for_family(cfg, family)
        dataset = fcfg.data.dataset
        if dataset not in seen:
            seen.add(dataset)
            try:
                if dataset in FOLDER_DATASETS:
                    official_files(fcfg)
                elif dataset == "cifar10":
                    _cifar10(fcfg)
            except (FileNotFoundError, ValueError) as err:
                problems.append(f"[data: {dataset}, for {family}] {err}")
        if fcfg.model.checkpoint:
            try:
                checkpoint_path(fcfg)
            except FileNotFoundError as err:
                problems.append(f"[checkpoint: {family}] {err}")
        if fcfg.model.retrain_checkpoint and fcfg.train.steps < 1:
            path = data_path(fcfg, fcfg.model.retrain_checkpoint)
            if not path.is_file():
                problems.append(f"[retrain checkpoint: {family}] {path} not found "
                                f"(model.retrain_checkpoint: a model you retrained on the retain "
                                f"data, in the official layout)")
        if fcfg.eval.is_network and fcfg.eval.is_network not in seen:
            seen.add(fcfg.eval.is_network)
            try:
                weights_path(fcfg.eval.is_network, fcfg)
            except FileNotFoundError as err:
                problems.append(f"[IS network: {fcfg.eval.is_network}, for {family}] {err}")
    finder = {"inception": find_inception_weights, "clip": find_clip_weights}.get(
        cfg.eval.extractor)
    if finder is not None:
        try:
            finder(cfg)
        except FileNotFoundError as err:
            problems.append(f"[extractor: {cfg.eval.extractor}] {err}")
    return problems


def check(cfg: RunConfig, **kwargs) -> None:
    """Raise one FileNotFoundError naming every missing input (see ``missing_inputs``)."""
    problems = missing_inputs(cfg, **kwargs)
    if problems:
        raise FileNotFoundError(f"{len(problems)} input(s) missing for SCALE={cfg.scale} "
                                f"(data_root {cfg.data_root}); nothing has run:\n\n"
                                + "\n\n".join(problems))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m l2l.preflight")
    parser.add_argument("--scale", default="paper")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args(argv)
    # a relative --data-root is taken from the current folder (a notebook's from notebooks/)
    root = {"data_root": str(Path(args.data_root).resolve())} if args.data_root else {}
    cfg = preset(args.scale, **root)
    try:
        check(cfg)
    except FileNotFoundError as err:
        raise SystemExit(str(err)) from None
    print(f"preflight: every input of SCALE={cfg.scale} is in place under {cfg.data_root}")


if __name__ == "__main__":
    main()
