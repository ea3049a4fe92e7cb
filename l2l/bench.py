"""Cost benchmark: wall time of every unlearning method against retraining from scratch.

    python -m l2l.bench --scale small [--families mae autoencoder] [--methods li2024 ...]
    python -m l2l.bench --loop [--steps 40]     # loop throughput against bare PyTorch (benchloop)

For each family: load (or train) the cached original, then time ``unlearn(original, method)``
for every method, ``retrain`` included (trained again here, not read from the cache, so that
every number comes from the same run on the same machine). Notebook 02 calls
``run_cost(cfg, fresh=False)`` instead: every run comes from the run store
(``l2l.experiments.store``), which recorded each model's wall time when it was made (in a cold
``make small``, in that run on that machine), so Tables 1-3 reuse the same models; at a scale
with a model zoo the retrain's time is measured here (``retrain_seconds``). Writes
``results/<scale>/cost.csv`` (+ sidecar): family, method, steps, wall_s, retrain_wall_s,
ratio_to_retrain, ms_per_step. Performance targets are read from this file, never asserted in
unit tests (timings depend on the machine; the sidecar records its CPU count and threads).
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import pandas as pd
import torch

from l2l.config import FAMILIES, RunConfig, for_family, preset, replace
from l2l.data import load_data
from l2l.evaluation import hole_mse_table
from l2l.experiments import retain_set, trained_generator, unlearned, varshney_calibrated
from l2l.io import load_or_compute_tables, save_table
from l2l.train import train_generator
from l2l.unlearn import METHODS, unlearn
from l2l.zoo import manifest_sha256

DEFAULT_METHODS = METHODS


def run_cost(cfg: RunConfig, *, families: tuple[str, ...] = FAMILIES,
             methods: tuple[str, ...] = DEFAULT_METHODS, fresh: bool = True,
             progress: bool = True) -> dict[str, Any]:
    """Time every method of every family (``retrain`` first).

    ``fresh=False`` reads every model and its recorded wall time from the run store (training
    or unlearning it there first if needed) instead of running it again.

    ``varshney2025`` gets the retrain-calibrated threshold when ``retrain`` is among the
    methods: lambda = d(original, retrain) on the forget probe (l2l's choice).

    Returns ``{"table", "provenance", "models", "histories", "keys"}``; models, histories and
    (with ``fresh=False``) the models' run-store keys are keyed by (family, method).
    """
    methods = tuple(sorted(methods, key=lambda m: m != "retrain"))
    rows, models, histories, keys = [], {}, {}, {}
    for family in families:
        fcfg = for_family(cfg, family)
        images, split = load_data(fcfg)
        original, _ = trained_generator(fcfg, "original", images, split)
        for method in methods:
            if not fresh:  # in the store "original" is the trained model: no cost row
                run = unlearned(cfg, family, method)
                models[family, method], histories[family, method] = run.model, run.history
                keys[family, method] = run.key | {"method": run.name}
                if method == "retrain" and manifest_sha256(cfg.scale):
                    rows.append({"family": family, "method": method, "steps": fcfg.train.steps,
                                 "wall_s": retrain_seconds(fcfg, images, split)})
                elif method != "original":
                    rows.append({"family": family, "method": method,
                                 "steps": _steps(run.history), "wall_s": run.wall_s})
                continue
            mcfg = fcfg
            if method == "li2024-proxy":
                mcfg = replace(fcfg, retain_source="proxy")
            if method == "varshney2025" and (family, "retrain") in models:
                mcfg = varshney_calibrated(fcfg, original, models[family, "retrain"], split.forget)
            start = time.perf_counter()
            model, hist = unlearn(original, method, forget=split.forget,
                                  retain=retain_set(split, mcfg), cfg=mcfg, progress=progress)
            wall = time.perf_counter() - start
            rows.append({"family": family, "method": method, "steps": _steps(hist),
                         "wall_s": wall})
            models[family, method], histories[family, method] = model, hist
    df = pd.DataFrame(rows)
    retrain = df[df["method"] == "retrain"].set_index("family")["wall_s"]
    df["retrain_wall_s"] = df["family"].map(retrain)
    df["ratio_to_retrain"] = df["wall_s"] / df["retrain_wall_s"]
    df["ms_per_step"] = 1000 * df["wall_s"] / df["steps"].clip(lower=1)
    prov = {"what": "wall time of unlearn(original, method) on this machine; retrain = "
                    "train_generator on retain from scratch with the family's recipe",
            "timed": "in this run" if fresh else "when the run store made each model (a cold "
                     "make small times them all in that run)",
            "retrain_timed": (f"here: {RETRAIN_TIMING_STEPS} steps of the retrain recipe from a "
                              "fresh initialisation, seconds per step x the recipe's steps (the "
                              "model itself comes from the model zoo, whose manifest records "
                              "where and how long it trained)")
                             if not fresh and manifest_sha256(cfg.scale) else "as the others",
            "varshney_lambda": "d(original, retrain) on the forget probe (hole MSE of "
                               "completions) when retrain ran first, else kappa * e0",
            "extractor": "none (wall times; d is the pixel-space hole MSE on the forget probe "
                         f"of {cfg.unlearn.probe_size} images)",
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": cfg.device, "seed": cfg.seed}
    return {"table": df, "provenance": prov, "models": models, "histories": histories,
            "keys": keys if not fresh else None}


RETRAIN_TIMING_STEPS = 20


def retrain_seconds(cfg: RunConfig, images: Any, split: Any, *,
                    steps: int = RETRAIN_TIMING_STEPS) -> float:
    """Wall seconds that retraining ``cfg``'s family from scratch on retain would take on this
    machine: ``steps`` steps of its recipe (after one untimed step), scaled to the recipe's
    steps. The zoo's retrain was trained elsewhere (another machine, other jobs beside it, or a
    GPU), so its recorded time does not compare with unlearning timed here. The VQ-GAN's frozen
    tokenizer is loaded, not trained (a retrain reuses it)."""
    from l2l.experiments.store import frozen_tokenizer
    from l2l.models import frozen_part, model_for
    from l2l.runtime import seeded_run

    with seeded_run(cfg.seed):  # the retrain's initialisation; the caller's generator is kept
        model = model_for(cfg)
    if frozen_part(model) is not None:
        frozen_tokenizer(model, cfg, images)
    train_generator(model, split.retain, replace(cfg, train__steps=1), progress=False)
    hist = train_generator(model, split.retain, replace(cfg, train__steps=steps), progress=False)
    return float(hist["time_s"].iloc[-1]) / steps * cfg.train.steps


def _steps(hist: pd.DataFrame) -> int:
    """Optimiser steps of a history (all stages; a training history has none)."""
    if not len(hist):
        return 0
    if "stage" not in hist:
        return int(hist["step"].max()) + 1
    return int((hist.groupby("stage")["step"].max() + 1).sum())


def varshney_summary(histories: dict[tuple[str, str], pd.DataFrame]) -> pd.DataFrame:
    """One row per family with a ``varshney2025`` history (``run_cost``'s ``histories``): lambda
    and how it was set, stage-1 steps, whether d reached lambda, d at the stop and after
    retention (nan without a logged stage-2 distance)."""
    rows = []
    for (family, method), h in histories.items():
        if method != "varshney2025":
            continue
        s1, s2 = h[h["stage"] == "decouple"], h[h["stage"] == "retain"]
        d1, d2 = s1["forget_distance"].dropna(), s2["forget_distance"].dropna()
        lam = h["lam"].iloc[0]
        rows.append({"family": family, "lam": lam, "lambda_source": h.attrs.get("lambda_source"),
                     "stage1_steps": int(s1["step"].max()) + 1, "reached": bool(d1.iloc[-1] >= lam),
                     "d_at_stop": d1.iloc[-1],
                     "d_after_retention": d2.iloc[-1] if len(d2) else float("nan")})
    return pd.DataFrame(rows)


GAP_MODELS = ("original", "retrain", "li2024", "varshney2025")


def forgetting_gap(models: dict[tuple[str, str], torch.nn.Module], cfg: RunConfig, *,
                   families: tuple[str, ...] = FAMILIES,
                   keys: dict[tuple[str, str], dict[str, Any]] | None = None
                   ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Notebook 02's "does anything measurable get forgotten?" table: hole MSE on forget
    training, forget test and retain test images (``evaluation.hole_mse_table``) of the original,
    the retrain reference, Li et al. and Varshney & Torra, per family (``run_cost``'s models).

    ``keys`` (``run_cost(fresh=False)["keys"]``: the run-store keys of the models) caches the
    table with them, so a warm rerun reads it; without keys it is always computed.

    Returns (table with a ``family`` column, sidecar provenance)."""
    def compute() -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
        images, split = load_data(cfg)
        parts = [hole_mse_table({m: models[family, m] for m in GAP_MODELS}, split,
                                for_family(cfg, family)).assign(family=family)
                 for family in families]
        prov = {"extractor": "none (pixel-space hole MSE)", "metric": "hole MSE, [0, 1] pixels",
                "hole": cfg.eval.hole, "n_images": "500 of each subset, evenly spaced (all when "
                "fewer)", "seed": cfg.seed}
        return {"gap": pd.concat(parts, ignore_index=True)}, prov

    if keys is None:
        tables, prov = compute()
    else:
        key = {"forgetting_gap": [keys[f, m] for f in families for m in GAP_MODELS]}
        tables, prov = load_or_compute_tables(key, compute, scale=cfg.scale)
    return tables["gap"], prov


def bench_make_small(cfg: RunConfig, run: str, note: str | None = None) -> None:
    """``results/<scale>/bench_make_small.csv``: the last ``make run``'s wall time per notebook
    and per run kind (``l2l.profile.make_table``), replacing the rows of the same ``run`` label
    and keeping the others (a cold and a warm run side by side); the sidecar describes the
    machine and keeps one ``note`` per run label (what else shared the machine, for example)."""
    import json
    import platform

    from l2l.io import results_dir
    from l2l.profile import make_table
    from l2l.zoo.build import machine

    table = make_table(results_dir(cfg.scale) / "profile", run=run)
    path = results_dir(cfg.scale) / "bench_make_small.csv"
    notes: dict[str, str] = {}
    if path.exists():
        old = pd.read_csv(path)
        table = pd.concat([old[old["run"] != run], table], ignore_index=True)
        sidecar = path.with_suffix(".json")
        if sidecar.exists():
            notes = json.loads(sidecar.read_text())["provenance"].get("notes", {})
    notes = {k: v for k, v in notes.items() if k in set(table["run"])}
    notes |= {run: note} if note else {}
    prov = {"machine": machine() | {"python": platform.python_version()},
            "made_by": "make small (Makefile run loop, l2l.profile), then python -m l2l.bench "
                       "--make-small " + run,
            "kinds": "train / zoo / unlearn / complete / score: exclusive wall seconds of those "
                     "calls (l2l.profile); other = the notebook's wall time less them (kernel "
                     "start, imports, data, cached reads, tables, figures)", "notes": notes}
    csv, _ = save_table(table, "bench_make_small", cfg, provenance=prov)
    print(table[table["notebook"] == "total"].to_string(index=False))
    print(csv)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m l2l.bench")
    parser.add_argument("--scale", default="small")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument("--loop", action="store_true",
                        help="l2l's loops against bare PyTorch loops (l2l.benchloop)")
    parser.add_argument("--steps", type=int, default=40, help="steps per loop with --loop")
    parser.add_argument("--make-small", choices=("cold", "warm"), default=None,
                        help="write bench_make_small.csv from the last make run's profile "
                             "(results/<scale>/profile/; l2l.profile), labelled cold or warm")
    parser.add_argument("--note", default=None,
                        help="with --make-small: how the run was made (kept in the sidecar)")
    args = parser.parse_args(argv)
    cfg = preset(args.scale)
    if args.make_small:
        bench_make_small(cfg, args.make_small, note=args.note)
        return
    if args.loop:
        from l2l.benchloop import run_loop_bench

        table, prov = run_loop_bench(cfg, families=tuple(args.families), steps=args.steps)
        csv, _ = save_table(table, "bench_loop", cfg, provenance=prov)
        print(table.round(3).to_string(index=False))
        print(csv)
        return
    out = run_cost(cfg, families=tuple(args.families), methods=tuple(args.methods))
    csv, _ = save_table(out["table"], "cost", cfg, provenance=out["provenance"])
    print(out["table"].round(3).to_string(index=False))
    print(csv)


if __name__ == "__main__":
    main()
