"""How far the small-scale numbers move across thread counts and CPU code paths.

``python -m l2l.portability [--steps 100] [--full] [--families ...]`` trains each family from the
same seed in a fresh subprocess per CPU setting (``SETTINGS``: 1 vs 2 threads,
``ATEN_CPU_CAPABILITY`` = avx2 / default, ``ONEDNN_MAX_CPU_ISA`` = AVX2, which emulate other
machines; ``AVX2 machine`` sets both) and writes
``results/small/portability_{probe,full,unlearned}.csv``:

* default: ``--steps`` training steps of the small recipe; a sha256 of the parameters and the last
  loss, i.e. which settings change the bits (README "Reproducibility").
* ``--full``: the full small recipe of the original (and, with ``--retrain``, the retrain) in a
  scratch run store, scored by ``evaluation.hole_mse_table`` (centre hole, 500 images of each
  of forget train / forget test / retain test):
  how far a headline number moves. Minutes per family and setting.
* ``--unlearned``: with the originals shipped in the model zoo (``l2l.zoo``) only what happens
  after them can move: each family's zoo original unlearned by ``--methods`` (small recipe) in
  a scratch run store, hashed and scored on the held-out test images of the claims' task
  (centre hole, 500 forget + 500 retain, domain network from the zoo): hole FID, MSE, cosine.

Nothing here is a timed test; it is the measurement behind ``l2l.experiments.stability.TOLERANCE``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from typing import Any

import pandas as pd

SETTINGS: dict[str, dict[str, str]] = {
    "1 thread": {},  # l2l's fixed count (l2l.runtime)
    "2 threads": {"L2L_THREADS": "2"},
    "ATEN avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "ATEN default": {"ATEN_CPU_CAPABILITY": "default"},
    "oneDNN AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    # both at once: the nearest emulation of a common other machine (an AVX2 CPU without AVX-512)
    "AVX2 machine": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}


def measure_unlearned(family: str, methods: list[str]) -> list[dict[str, Any]]:
    """The rows of one family's zoo original unlearned by each of ``methods``."""
    import torch

    from l2l.config import for_family, preset
    from l2l.evaluation import completion_table
    from l2l.experiments import store
    from l2l.io import state_sha256

    cfg = preset("small", device="cpu")
    images, split = store.data(for_family(cfg, family))
    extractor = store.feature_extractor(cfg, images)  # the zoo's domain network
    base = {"family": family, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads()}
    rows = []
    for method in methods:
        run = store.unlearned(cfg, family, method, force=method not in store.TRAINED)
        table, prov = completion_table({method: run.model}, split, extractor, run.cfg)
        scores = {f"{s}_{m}_hole": table[f"{s}_{m}_hole"].iloc[0]
                  for s in ("forget", "retain") for m in ("fid", "mse", "cos")}
        rows.append(base | {"role": method, "params_sha256": state_sha256(run.model)[:12]}
                    | scores | {"_provenance": prov})  # popped by main() for the sidecar
    return rows


def measure(family: str, *, steps: int, full: bool, retrain: bool) -> list[dict[str, Any]]:
    """The rows of one family under the current process's CPU settings."""
    import torch

    from l2l.config import for_family, preset
    from l2l.experiments import store
    from l2l.io import state_sha256
    from l2l.models import frozen_part, model_for
    from l2l.train import train_generator

    cfg = for_family(preset("small", device="cpu"), family)
    images, split = store.data(cfg)
    base = {"family": family, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads()}
    if not full:
        cfg = replace(cfg, train=replace(cfg.train, steps=steps))
        torch.manual_seed(cfg.seed)
        model = model_for(cfg)
        if (part := frozen_part(model)) is not None:  # the tokenizer is what is trained first
            hist = model.train_tokenizer(images.x_train, steps=steps, lr=cfg.train.tokenizer_lr,
                                         adversarial=cfg.train.tokenizer_adversarial,
                                         generator=torch.Generator().manual_seed(cfg.seed + 11),
                                         progress=False)
            params, what = part, "tokenizer"
        else:
            hist = train_generator(model, images.x_train, cfg, progress=False)
            params, what = model, "generator"
        return [base | {"role": f"original ({what}, {steps} steps)",
                        "params_sha256": state_sha256(params)[:12],
                        "last_loss": float(hist["loss"].iloc[-1])}]
    from l2l.evaluation import hole_mse_table

    rows = []
    for role in ("original", "retrain") if retrain else ("original",):
        model, _ = store.trained_generator(cfg, role, images, split, force=True)
        scores = hole_mse_table({role: model}, split, cfg).iloc[0].drop("model").to_dict()
        rows.append(base | {"role": role, "params_sha256": state_sha256(model)[:12]} | scores)
    return rows


def main(argv: list[str] | None = None) -> pd.DataFrame:
    from l2l.config import FAMILIES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    ap.add_argument("--steps", type=int, default=100, help="training steps (default mode)")
    ap.add_argument("--full", action="store_true", help="the full small recipe, scored")
    ap.add_argument("--retrain", action="store_true", help="with --full: the retrain too")
    ap.add_argument("--unlearned", action="store_true",
                    help="the zoo originals unlearned by --methods, scored")
    ap.add_argument("--methods", nargs="+", default=["original", "li2024", "varshney2025"])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error(f"--steps must be >= 1, got {args.steps}")
    if args.child:  # one setting, in its own process: print the rows as JSON
        rows = [r for f in args.families for r in (
            measure_unlearned(f, args.methods) if args.unlearned else
            measure(f, steps=args.steps, full=args.full, retrain=args.retrain))]
        print(json.dumps(rows, default=str))
        return pd.DataFrame(rows)
    rows: list[dict[str, Any]] = []
    metric_prov: dict[str, Any] = {"extractor": "none (parameter hashes, losses, hole MSE)"}
    with tempfile.TemporaryDirectory() as scratch:  # --full trains into a scratch run store
        for name in args.settings:
            env = os.environ | SETTINGS[name] | {"L2L_OUTPUT_ROOT": scratch}
            cmd = [sys.executable, "-m", "l2l.portability", "--child", name, "--steps",
                   str(args.steps), "--families", *args.families] + \
                  (["--full"] if args.full else []) + (["--retrain"] if args.retrain else []) + \
                  (["--unlearned", "--methods", *args.methods] if args.unlearned else [])
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            for r in json.loads(out.stdout.strip().splitlines()[-1]):
                metric_prov = r.pop("_provenance", metric_prov)
                rows.append({"setting": name, **r})
            print(name, "done", flush=True)
    table = pd.DataFrame(rows)
    from l2l.config import preset
    from l2l.io import save_table

    mode = "unlearned" if args.unlearned else "full" if args.full else "probe"
    save_table(table, f"portability_{mode}", preset("small"), provenance=metric_prov | {
        "settings": {k: SETTINGS[k] for k in args.settings},
        "steps": None if args.full or args.unlearned else args.steps, "retrain": args.retrain,
        "methods": args.methods if args.unlearned else None, "seed": 0,
        "command": "python -m l2l.portability " + " ".join(argv if argv is not None else sys.argv[1:])})
    print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
