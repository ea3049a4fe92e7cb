"""Files: repo-relative paths, tables with sidecars, a config-keyed cache and checkpoints.

Layout (relative to the output root, the repo by default; ``$L2L_OUTPUT_ROOT`` moves it):
    results/<scale>/<name>.csv + <name>.json    tidy table + how it was made
    results/<scale>/cache/<hash>/...             cached models and arrays, keyed by config
    figures/<scale>/<name>.png + .pdf
All writes are atomic (temporary file + rename), so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import torch

import l2l
from l2l.config import RunConfig, config_hash, to_dict

REPO_ROOT = Path(l2l.__file__).resolve().parents[1]
T = TypeVar("T")


class CacheMismatchError(RuntimeError):
    """A cache entry exists but was written by another config."""


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or of the wrong layout."""


def output_root() -> Path:
    """Where results/ and figures/ live: ``$L2L_OUTPUT_ROOT`` or the repository root."""
    return Path(os.environ.get("L2L_OUTPUT_ROOT") or REPO_ROOT)


def results_dir(scale: str) -> Path:
    return output_root() / "results" / scale


def figures_dir(scale: str) -> Path:
    return output_root() / "figures" / scale


def cache_dir(scale: str) -> Path:
    return results_dir(scale) / "cache"


def data_path(cfg: RunConfig, relative: str) -> Path:
    """A file under the user's data root; a relative root is taken from the notebooks folder."""
    root = Path(cfg.data_root)
    if not root.is_absolute():
        root = (REPO_ROOT / "notebooks" / root).resolve()
    return root / relative


def versions() -> dict[str, str]:
    """Versions of the packages that change numbers, and the torch thread count the process
    computes with (it changes the bits too; ``l2l.runtime`` fixes it)."""
    out = {"python": platform.python_version(), "l2l": l2l.__version__,
           "torch_threads": str(torch.get_num_threads())}
    for pkg in ("torch", "torchvision", "numpy", "scipy", "pandas", "clean-fid", "scikit-image"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Write through a temporary file in the same folder, then rename: a reader never sees a
    half-written file. The file gets the mode a plain ``open`` would give it (0666 less the
    umask), not ``mkstemp``'s private 0600, so a shared results folder stays readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json(path: Path, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    return atomic_write(path, lambda p: p.write_text(text))


def save_table(
    df: pd.DataFrame, name: str, cfg: RunConfig, *, provenance: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write ``results/<scale>/<name>.csv`` and a JSON sidecar saying how it was made.

    The sidecar holds the full config and its hash, package versions, the resolved device and
    ``provenance`` (feature extractor, image counts, ...), and at a scale with a model zoo the
    sha256 of its manifest (the models it was made from). No timestamps: the same run gives
    byte-identical files.
    """
    from l2l.zoo import manifest_sha256

    if df.empty:
        raise ValueError(f"refusing to save an empty table {name!r}")
    out = results_dir(cfg.scale)
    csv = atomic_write(out / f"{name}.csv", lambda p: df.to_csv(p, index=False, float_format="%.6g"))
    _remember(csv, cfg.scale)
    sidecar = {
        "table": f"{name}.csv",
        "columns": list(df.columns),
        "rows": len(df),
        "config": to_dict(cfg),
        "config_hash": config_hash(cfg),
        "versions": versions(),
        "provenance": provenance or {},
    }
    if (zoo := manifest_sha256(cfg.scale)) is not None:
        sidecar["zoo_manifest_sha256"] = zoo
    return csv, write_json(out / f"{name}.json", sidecar)


def load_table(name: str, scale: str) -> pd.DataFrame:
    path = results_dir(scale) / f"{name}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run the notebook that writes {name!r}")
    _remember(path, scale)
    return pd.read_csv(path)


# The tables this process wrote or read, per scale: (file name, sha256 of the bytes). A figure's
# sidecar (``plotting.save_figure``) names them, so a figure says which tables it was drawn with.
_TABLES_SEEN: dict[str, dict[str, str]] = {}


def _remember(path: Path, scale: str) -> None:
    _TABLES_SEEN.setdefault(scale, {})[path.name] = file_sha256(path)


def tables_seen(scale: str) -> dict[str, str]:
    """``{file name: sha256}`` of every ``results/<scale>/`` table this process saved or loaded
    so far (a notebook's own tables, and the ones it read)."""
    return dict(sorted(_TABLES_SEEN.get(scale, {}).items()))


def state_sha256(net: torch.nn.Module) -> str:
    """sha256 over the state dict (names, dtypes, shapes, bytes), to tell two trained nets apart."""
    h = hashlib.sha256()
    for key, value in net.state_dict().items():
        t = value.detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_entry(key: dict[str, Any], scale: str, *, force: bool = False) -> Path:
    """The cache folder for ``key``. One whose recorded key differs (a hash collision or a
    hand-edited entry) raises CacheMismatchError, unless ``force``: then it is emptied and
    rewritten for ``key``."""
    entry = cache_dir(scale) / config_hash(key)
    meta = entry / "key.json"
    if meta.exists():
        recorded = json.loads(meta.read_text())
        if recorded != json.loads(json.dumps(key, default=str)):
            if not force:
                raise CacheMismatchError(
                    f"cache entry {entry} was written by another config; delete it or rerun "
                    f"with FORCE = True (which replaces it)")
            shutil.rmtree(entry)
            write_json(meta, key)
    else:
        write_json(meta, key)
    return entry


CACHE_SUFFIXES = (".pt", ".csv", ".json")


def check_force(force: Any) -> bool:
    """``force`` as a bool; papermill's ``-p FORCE no`` arrives as the string "no", which must
    not read as true."""
    if not isinstance(force, bool):
        raise TypeError(f"FORCE must be True or False, got {force!r} ({type(force).__name__}); "
                        f"papermill: -p FORCE True / -p FORCE False")
    return force


def _save(path: Path, value: Any) -> None:
    if path.suffix == ".csv":
        atomic_write(path, lambda p: value.to_csv(p, index=False))
    elif path.suffix == ".pt":
        atomic_write(path, lambda p: torch.save(value, p))
    elif path.suffix == ".json":
        atomic_write(path, lambda p: p.write_text(json.dumps(value, indent=1, default=str)))
    else:
        raise ValueError(f"cache files must end in .pt, .csv or .json, got {path.name}")


def _load(path: Path) -> Any:
    if path.suffix == ".csv":
        return pd.read_csv(path)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file
        raise CheckpointError(f"cannot read cache file {path}: {exc}; delete it to recompute") from exc


def load_or_compute(
    key: dict[str, Any], filename: str, compute: Callable[[], T], *, scale: str, force: bool = False
) -> T:
    """Return the cached value for (key, filename) or compute, store and return it.

    Args:
        key: the sub-config the value depends on (``config.cache_key``).
        filename: ``*.pt`` (tensors / dicts of tensors, loaded with ``weights_only=True``)
            or ``*.csv`` (a DataFrame).
        compute: called when there is no entry (or ``force``).
        scale: picks ``results/<scale>/cache``.
        force: recompute and overwrite.
    """
    if Path(filename).suffix not in CACHE_SUFFIXES:
        raise ValueError(f"cache files must end in {', '.join(CACHE_SUFFIXES)}, got {filename!r}")
    path = cache_entry(key, scale, force=check_force(force)) / filename
    if path.exists() and not force:
        return _load(path)
    value = compute()
    _save(path, value)
    return value


def load_or_compute_tables(
    key: dict[str, Any], compute: Callable[[], tuple[dict[str, pd.DataFrame | None], dict[str, Any]]],
    *, scale: str, force: bool = False
) -> tuple[dict[str, pd.DataFrame | None], dict[str, Any]]:
    """Several tables computed together, and their provenance, cached as one entry.

    ``compute() -> ({name: DataFrame or None}, provenance dict)``. Each table is stored as
    ``<name>.csv`` and the provenance (with which tables exist) as ``tables.json``, written
    last, so an interrupted entry is recomputed. What is returned is always what a reload
    gives (the tables read back from their CSV), so a cold and a warm run return the same.
    """
    entry = cache_entry(key, scale, force=check_force(force))
    index = entry / "tables.json"
    if force or not index.exists():
        tables, prov = compute()
        for name, table in tables.items():
            if table is not None:
                _save(entry / f"{name}.csv", table)
        _save(index, {"tables": {n: t is not None for n, t in tables.items()}, "provenance": prov})
    info = _load(index)
    return ({n: (_load(entry / f"{n}.csv") if present else None)
             for n, present in info["tables"].items()}, info["provenance"])


def checkpoint_dict(model: torch.nn.Module, cfg: RunConfig, *, step: int) -> dict[str, Any]:
    """A self-describing checkpoint: weights, family/size, config, step and package version."""
    return {
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "family": getattr(model, "family", type(model).__name__),
        "config": to_dict(cfg),
        "step": int(step),
        "l2l_version": l2l.__version__,
    }


def save_checkpoint(path: Path, model: torch.nn.Module, cfg: RunConfig, *, step: int) -> Path:
    return atomic_write(path, lambda p: torch.save(checkpoint_dict(model, cfg, step=step), p))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` (``weights_only=True``)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    ckpt = _load(path)
    missing = {"model", "config", "step", "l2l_version"} - set(ckpt if isinstance(ckpt, dict) else {})
    if missing:
        raise CheckpointError(f"{path} is not an l2l checkpoint (missing {sorted(missing)})")
    return ckpt


def save_arrays(arrays: dict[str, torch.Tensor], name: str, scale: str) -> Path:
    """Image panels and other tensors a figure is drawn from: ``results/<scale>/arrays/<name>.pt``
    (not committed; the figure is)."""
    path = results_dir(scale) / "arrays" / f"{name}.pt"
    return atomic_write(path, lambda p: torch.save({k: v.cpu() for k, v in arrays.items()}, p))


def load_arrays(name: str, scale: str) -> dict[str, torch.Tensor]:
    path = results_dir(scale) / "arrays" / f"{name}.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run the notebook that writes {name!r}")
    return _load(path)


def save_text(text: str, name: str, scale: str) -> Path:
    """A rendered table (markdown, LaTeX) next to its CSV: ``results/<scale>/<name>``."""
    return atomic_write(results_dir(scale) / name, lambda p: p.write_text(text))
