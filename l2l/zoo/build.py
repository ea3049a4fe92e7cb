"""``make zoo``: train every from-scratch model of a scale once and write it into the zoo.

The plan (``plan(scale)``) lists what the notebooks train: the domain feature network, every
family's original and retrained reference (the VQ tokenizer with the VQ-GAN), and the
AutoEncoder study's and the poisoning audit's originals and retrains for every seed and split.
Each item runs through the run store (``l2l.experiments.store``), so the zoo holds exactly the
keys the notebooks ask for. Items run in ``jobs`` worker processes, one torch thread each
(``l2l.runtime``): the tokenizer and the feature network first, then the rest, longest first.

Resumable: an entry is written (file, then manifest) as soon as its model is trained, and a
rerun loads what the zoo already holds instead of training it. Work files go to
``results/<scale>/zoo-build/`` (not committed). After a build of the whole plan, entries that no
item used (left by an earlier recipe) are removed (``prune``).
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import json
import os
import platform
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from l2l.config import FAMILIES, RunConfig, for_family, preset, resolve_device
from l2l.io import atomic_write, cache_entry, file_sha256, output_root
from l2l.runtime import fix_threads
from l2l.zoo import (BUILDING_ENV, FORMAT, MANIFEST, MAX_FILE_BYTES, MAX_ZOO_BYTES, ZooError,
                     entry_id, pack, read_manifest, record, record_served, zoo_dir)

SCORE_MASK = "centre_half"
SCORE_IMAGES = 500  # test images per subset of the manifest's scores (notebook 01's count)


@dataclass(frozen=True)
class Item:
    """One thing to train: ``role`` is "classifier", "tokenizer", "original" or "retrain"."""

    name: str
    role: str
    cfg: RunConfig

    @property
    def first(self) -> bool:
        """Needed by other items (they would train it again): runs before the rest."""
        return self.role in ("classifier", "tokenizer")


def plan(scale: str, *, families: tuple[str, ...] = FAMILIES, studies: bool = True) -> list[Item]:
    """Everything the notebooks of ``scale`` train from scratch, once each."""
    from l2l.experiments.p2_audit import AUDIT_SEEDS, POISON_SPLIT
    from l2l.experiments.p2_autoencoder import AE_SEEDS, AE_SPLITS, seed_config
    from l2l.experiments.store import family, run_config, trained_key

    base = preset(scale)
    items = [Item("classifier domain", "classifier", base)]
    runs: list[tuple[str, RunConfig]] = [(f, for_family(base, f)) for f in families]
    if studies and "autoencoder" in families:
        for seed in AE_SEEDS[scale]:
            for split, overrides in AE_SPLITS.items():
                cfg = run_config(seed_config(base, seed), "autoencoder", "retrain", **overrides)
                runs.append((f"autoencoder {split} seed {seed}", cfg))
        for seed in AUDIT_SEEDS[scale]:
            cfg = run_config(seed_config(base, seed), "autoencoder", "retrain", **POISON_SPLIT)
            runs.append((f"autoencoder poisoned seed {seed}", cfg))
    seen = set()
    for label, cfg in runs:
        if family(cfg.model.family).frozen_part and not cfg.model.checkpoint:
            items.append(Item(f"tokenizer {label}", "tokenizer", cfg))
        for role in ("original", "retrain"):
            key = json.dumps(trained_key(cfg, role), sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                items.append(Item(f"{role} {label}", role, cfg))
    return items


def _train(item: Item) -> None:
    """Make ``item`` through the run store (zoo first, then the build's cache)."""
    from l2l.experiments import store

    cfg = item.cfg
    if item.role == "classifier":
        store.feature_extractor(cfg)
    elif item.role == "tokenizer":
        torch.manual_seed(cfg.seed)
        store.frozen_tokenizer(store.model_for(cfg), cfg, store.data(cfg)[0])
    else:
        store.trained_generator(cfg, item.role, *store.data(cfg))


def machine() -> dict[str, Any]:
    """Where a zoo entry was trained: CPU (or GPU) model, threads, torch version."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    out = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": fix_threads(),
           "torch": torch.__version__, "platform": platform.platform()}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


@contextmanager
def _manifest_lock(scale: str) -> Iterator[dict[str, Any]]:
    """The manifest, read and written back under an exclusive lock (several workers)."""
    folder = zoo_dir(scale)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = read_manifest(scale) or {"format": FORMAT, "scale": scale, "entries": {}}
        yield manifest
        text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
        atomic_write(folder / MANIFEST, lambda p: p.write_text(text))


def _history_facts(ckpt: dict[str, Any]) -> dict[str, Any]:
    hist = ckpt.get("history") or {}
    steps = hist.get("step") or []
    times = hist.get("time_s") or []
    return {"steps": int(max(steps)) + 1 if steps else None,
            "wall_s": round(float(times[-1]), 1) if times else None}


def write_entry(scale: str, key: dict[str, Any], filename: str, spec: dict[str, Any] | None,
                item: Item) -> str:
    """Copy one trained run-store entry into the zoo (float16) and list it in the manifest."""
    ckpt = torch.load(cache_entry(key, scale) / filename, map_location="cpu", weights_only=True)
    eid = entry_id(key, filename)
    path = zoo_dir(scale) / f"{eid}.pt"
    atomic_write(path, lambda p: torch.save(pack(ckpt), p))
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ZooError(f"{path} has {size} bytes, over the zoo's {MAX_FILE_BYTES} per file")
    with _manifest_lock(scale) as manifest:
        manifest["entries"][eid] = {
            "file": path.name, "sha256": file_sha256(path), "bytes": size,
            "cache_file": filename, "item": item.name,
            "key": json.loads(json.dumps(key, default=str)), "spec": spec,
            "training": _history_facts(ckpt), "machine": machine(), "scores": None}
    return eid


def score(item: Item) -> dict[str, Any]:
    """Centre_half hole FID / MSE of ``item``'s generator as the zoo serves it, beside the
    per-image mean-colour fill's, on ``SCORE_IMAGES`` forget and retain test images, scored
    with the scale's domain network (notebook 01's extractor)."""
    from l2l.evaluation import completion_table
    from l2l.experiments import store

    images, split = store.data(item.cfg)
    model, _ = store.trained_generator(item.cfg, item.role, images, split)
    ext = store.feature_extractor(preset(item.cfg.scale))
    table, _ = completion_table({"mean fill": "mean fill", "model": model}, split, ext, item.cfg,
                                mask_name=SCORE_MASK, max_images=SCORE_IMAGES)
    out: dict[str, Any] = {"mask": SCORE_MASK, "extractor": item.cfg.eval.extractor}
    for _, row in table.iterrows():
        who = "model" if row["model"] == "model" else "mean_fill"
        for subset in ("forget", "retain"):
            for metric in ("fid_hole", "mse_hole"):
                out[f"{who}_{subset}_{metric}"] = round(float(row[f"{subset}_{metric}"]), 6)
            out[f"n_{subset}"] = int(row[f"{subset}_n_images"])
    return out


@contextmanager
def _building(build_root: str) -> Iterator[None]:
    """The build's environment: misses expected, its own run store under ``build_root``."""
    saved = {k: os.environ.get(k) for k in (BUILDING_ENV, "L2L_OUTPUT_ROOT")}
    os.environ[BUILDING_ENV], os.environ["L2L_OUTPUT_ROOT"] = "1", build_root
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_item(item: Item, *, build_root: str, device: str) -> list[str]:
    """Worker: train ``item`` (what the zoo lacks), write its entries, score a generator.
    Returns the ids of the entries the item uses (written now or served by the zoo)."""
    with _building(build_root):
        return _run_item(item, device)


def _run_item(item: Item, device: str) -> list[str]:
    fix_threads()
    from l2l.experiments.store import trained_key

    cfg = dataclasses.replace(item.cfg, device=device)
    item = Item(item.name, item.role, cfg)
    made: list[tuple[dict[str, Any], str, dict[str, Any] | None]] = []
    served: set[str] = set()
    record(made)
    record_served(served)
    try:
        _train(item)
    finally:
        record(None)
        record_served(None)
    written = [write_entry(cfg.scale, key, filename, spec, item) for key, filename, spec in made]
    if item.role in ("original", "retrain"):
        eid = entry_id(trained_key(cfg, item.role), f"{item.role}.pt")
        with _manifest_lock(cfg.scale) as manifest:
            needs_score = manifest["entries"].get(eid, {}).get("scores") is None
        if needs_score:
            scores = score(item)
            with _manifest_lock(cfg.scale) as manifest:
                manifest["entries"][eid]["scores"] = scores
    return written + sorted(served - set(written))


def prune(scale: str, used: set[str]) -> list[str]:
    """Remove the entries (manifest lines and files) that no plan item used: left behind by an
    earlier recipe, they would only take space. Returns their files."""
    with _manifest_lock(scale) as manifest:
        stale = sorted(set(manifest["entries"]) - used)
        files = [manifest["entries"].pop(eid)["file"] for eid in stale]
    for name in files:
        (zoo_dir(scale) / name).unlink(missing_ok=True)
    return files


def build(scale: str = "small", *, jobs: int = 1, device: str = "cpu",
          families: tuple[str, ...] = FAMILIES, studies: bool = True) -> dict[str, Any]:
    """Train and write everything ``plan(scale)`` lists that the zoo lacks; the manifest."""
    items = plan(scale, families=families, studies=studies)
    build_root = str(output_root() / "results" / scale / "zoo-build")
    device = resolve_device(device)
    bar = tqdm(total=len(items), desc=f"zoo {scale}", unit="model")
    used: set[str] = set()
    for phase in ([i for i in items if i.first], [i for i in items if not i.first]):
        if jobs <= 1:
            for item in phase:
                bar.set_postfix_str(item.name)
                used.update(run_item(item, build_root=build_root, device=device))
                bar.update()
            continue
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_item, i, build_root=build_root, device=device): i
                       for i in phase}
            for done in as_completed(futures):
                used.update(done.result())  # a failed item stops the build with its error
                bar.set_postfix_str(futures[done].name)
                bar.update()
    bar.close()
    if families == FAMILIES and studies:  # the whole plan ran: what it did not use is stale
        for name in prune(scale, used):
            print(f"zoo {scale}: removed {name} (no longer in the plan)")
    manifest = read_manifest(scale) or {"entries": {}}
    total = sum(e["bytes"] for e in manifest["entries"].values())
    if total > MAX_ZOO_BYTES:
        raise ZooError(f"the {scale} zoo holds {total} bytes, over its {MAX_ZOO_BYTES}")
    return manifest


def main(argv: list[str] | None = None) -> None:
    from l2l.zoo import verify

    ap = argparse.ArgumentParser(prog="python -m l2l.zoo", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="train what the zoo lacks and write it (make zoo)")
    b.add_argument("--scale", default="small")
    b.add_argument("--jobs", type=int, default=1, help="worker processes (one thread each)")
    b.add_argument("--device", default="cpu", help="cpu, cuda or auto (training and scoring)")
    v = sub.add_parser("verify", help="check every zoo file against the manifest")
    v.add_argument("--scale", default="small")
    s = sub.add_parser("list", help="the plan: what the zoo holds and lacks")
    s.add_argument("--scale", default="small")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        start = time.perf_counter()
        manifest = build(args.scale, jobs=args.jobs, device=args.device)
        print(f"zoo {args.scale}: {len(manifest['entries'])} entries in {zoo_dir(args.scale)} "
              f"({time.perf_counter() - start:.0f} s)")
    elif args.cmd == "verify":
        n = verify(args.scale)
        print(f"zoo {args.scale}: {n} files match the manifest" if n else
              f"zoo {args.scale}: no zoo for this scale (models are trained in-process)")
    else:
        manifest = read_manifest(args.scale) or {"entries": {}}
        for item in plan(args.scale):
            print(f"{item.role:10s} {item.name}")
        print(f"{len(manifest['entries'])} entries in the manifest")


if __name__ == "__main__":
    main()
