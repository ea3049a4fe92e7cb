"""The model zoo: every model that a scale trains from scratch, trained once and shipped.

``make zoo`` (``python -m l2l.zoo build``, ``l2l.zoo.build``) trains the originals and retrained
references of every family, the VQ tokenizer, the domain feature network and the AutoEncoder
study's and the poisoning audit's models, and writes them to ``l2l/zoo/<scale>/`` next to a
``manifest.json``. Each manifest entry names its ``file``, ``sha256`` and size, the run-store key
it stands for (``key``: the training config that made it) and how it was made (steps, wall time,
machine, threads, torch version, its centre_half hole FID / MSE beside the mean fill's).

The run store asks the zoo first (``load_or_train``): a model whose key the manifest holds is
read from the zoo after its sha256 is checked, and never trained. A key the zoo does not hold (a
user changed a training recipe) is trained into the run-store cache as before, with a warning
naming the zoo entry that did not match and the fields that differ. A listed file that is
missing, truncated or altered stops the run with one ``ZooError`` naming the file and
``make zoo``. A scale without a manifest (smoke, paper) has no zoo and trains in-process.

Weights are stored as float16 (the zoo must stay under 60 MB) and come back as float32: the zoo's
model *is* the rounded one, and every score in the manifest is of the stored weights.

``$L2L_ZOO_DIR`` moves the zoo (a folder holding ``<scale>/manifest.json``; the tests use a
temporary one).
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from l2l.config import config_hash
from l2l.io import REPO_ROOT, atomic_write, cache_dir, file_sha256, load_or_compute
from l2l.profile import timed

T = TypeVar("T")
ZOO_ENV = "L2L_ZOO_DIR"
BUILDING_ENV = "L2L_ZOO_BUILDING"  # set by make zoo: misses are expected, the cache is its own
MANIFEST = "manifest.json"
FORMAT = 1
# the run-store files a zoo may hold (l2l.experiments.store): generators, tokenizer, classifier
KINDS = ("original.pt", "retrain.pt", "tokenizer.pt", "classifier.pt")
STORED_DTYPE = torch.float16
MAX_FILE_BYTES = 20 * 2**20
MAX_ZOO_BYTES = 60 * 10**6


class ZooError(RuntimeError):
    """A zoo file is missing, truncated or altered, or the manifest is unreadable."""


class ZooMissWarning(UserWarning):
    """A model the zoo does not hold for this config: it is trained here instead."""


def zoo_root() -> Path:
    return Path(os.environ.get(ZOO_ENV) or REPO_ROOT / "l2l" / "zoo")


def zoo_dir(scale: str) -> Path:
    return zoo_root() / scale


def entry_id(key: dict[str, Any], filename: str) -> str:
    """The manifest's id of one run-store entry: ``<kind>-<family or domain>-<key hash>``."""
    family = (key.get("model") or {}).get("family", "domain")
    return f"{Path(filename).stem}-{family}-{config_hash(key)}"


def read_manifest(scale: str) -> dict[str, Any] | None:
    """The scale's manifest, or None when the scale has no zoo."""
    path = zoo_dir(scale) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ZooError(f"cannot read the zoo manifest {path}: {exc}; restore it from git or "
                       f"rebuild the zoo with make zoo") from exc
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("entries"), dict):
        raise ZooError(f"{path} is not an l2l zoo manifest (format {FORMAT}); rebuild it with "
                       f"make zoo")
    return manifest


def manifest_sha256(scale: str) -> str | None:
    """sha256 of the scale's manifest (which zoo a result was made with), None without a zoo."""
    path = zoo_dir(scale) / MANIFEST
    return file_sha256(path) if path.exists() else None


_VERIFIED: dict[tuple[str, int, int], str] = {}


def verify_file(scale: str, entry: dict[str, Any]) -> Path:
    """The path of ``entry``'s file after checking its size and sha256 (once per process and
    file state); a ZooError naming the file and ``make zoo`` otherwise."""
    path = zoo_dir(scale) / entry["file"]
    fix = f"restore it (git checkout -- {path}) or rebuild the zoo with make zoo"
    if not path.exists():
        raise ZooError(f"zoo file {path} is missing: {fix}")
    stat = path.stat()
    state = (str(path), stat.st_size, stat.st_mtime_ns)
    if _VERIFIED.get(state) == entry["sha256"]:
        return path
    if stat.st_size != entry["bytes"]:
        raise ZooError(f"zoo file {path} has {stat.st_size} bytes, the manifest says "
                       f"{entry['bytes']} (truncated or altered): {fix}")
    if file_sha256(path) != entry["sha256"]:
        raise ZooError(f"zoo file {path} does not match its sha256 in {MANIFEST} (altered): {fix}")
    _VERIFIED[state] = entry["sha256"]
    return path


def verify(scale: str) -> int:
    """Check every file of the scale's zoo (before a run computes anything); the number of
    files checked, 0 when the scale has no zoo."""
    manifest = read_manifest(scale)
    if manifest is None:
        return 0
    for entry in manifest["entries"].values():
        verify_file(scale, entry)
    return len(manifest["entries"])


def pack(ckpt: dict[str, Any]) -> dict[str, Any]:
    """A run-store checkpoint as the zoo stores it: float32 weights as float16 (listed)."""
    state = ckpt["model"]
    halved = [k for k, v in state.items() if v.dtype == torch.float32]
    model = {k: (v.to(STORED_DTYPE) if k in halved else v) for k, v in state.items()}
    return ckpt | {"model": model, "zoo_halved": halved}


def unpack(stored: dict[str, Any]) -> dict[str, Any]:
    """Inverse of ``pack`` (up to the float16 rounding): what the run store would hold."""
    halved = set(stored.pop("zoo_halved", ()))
    stored["model"] = {k: (v.float() if k in halved else v) for k, v in stored["model"].items()}
    return stored


def load_entry(scale: str, entry: dict[str, Any]) -> dict[str, Any]:
    with timed("zoo"):
        path = verify_file(scale, entry)
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # matches its sha256 but will not load: a bad build
            raise ZooError(f"zoo file {path} cannot be read ({exc}): rebuild the zoo with "
                           f"make zoo") from exc
        return unpack(stored)


def spec_dict(spec: Any) -> dict[str, Any] | None:
    """A model's architecture-and-sampler spec (a dataclass) as plain JSON, or None. A size's
    name is in the key, its spec is not: the manifest keeps the spec, so an entry made before a
    size was redefined is not served for the new one."""
    if spec is None:
        return None
    return json.loads(json.dumps(dataclasses.asdict(spec), default=str))


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out |= _flat(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def _differences(want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    want, have = _flat(want), _flat(have)
    return [f"{k}: zoo {have.get(k, '(absent)')!r}, here {want.get(k, '(absent)')!r}"
            for k in sorted(set(want) | set(have)) if want.get(k) != have.get(k)]


def _listed(fields: list[str]) -> str:
    more = f" (+{len(fields) - 3} more)" if len(fields) > 3 else ""
    return "; ".join(fields[:3]) + more


def mismatch(key: dict[str, Any], filename: str, manifest: dict[str, Any]) -> str:
    """Why no zoo entry serves ``key``: the nearest entry of the same kind and the fields that
    differ, or that the zoo holds none of that kind."""
    want = json.loads(json.dumps(key, default=str))
    family = (key.get("model") or {}).get("family")
    same_kind = [e for e in manifest["entries"].values() if e["cache_file"] == filename
                 and (e["key"].get("model") or {}).get("family") == family]
    if not same_kind:
        return f"the zoo holds no {Path(filename).stem} model of this kind"

    best = min(same_kind, key=lambda e: len(_differences(want, e["key"])))
    return f"nearest zoo entry {best['file']} differs in " + _listed(_differences(want, best["key"]))


def check_cache_stamp(scale: str, manifest: dict[str, Any]) -> None:
    """The run-store cache of a scale with a zoo is tied to that zoo: an unlearned model or a
    completion cached from another zoo's (or a locally trained) original would be reused under
    the same key. A cache made with another manifest (or before the zoo) stops the run."""
    cache = cache_dir(scale)
    stamp = cache / "zoo.json"
    want = {"manifest_sha256": file_sha256(zoo_dir(scale) / MANIFEST)}
    if stamp.exists():
        if json.loads(stamp.read_text()) == want:
            return
        why = "was made with another model zoo"
    elif any(p.name in KINDS for p in cache.glob("*/*")):
        why = "holds models trained before the model zoo"
    else:
        atomic_write(stamp, lambda p: p.write_text(json.dumps(want) + "\n"))
        return
    raise ZooError(f"the run store {cache} {why}: its cached runs would mix with the zoo's "
                   f"models. Empty it first (make clean-small, or delete {cache})")


_STAMPED: set[str] = set()


def lookup(key: dict[str, Any], filename: str, scale: str, *,
           spec: Any = None) -> dict[str, Any] | None:
    """The zoo's checkpoint for run-store entry (``key``, ``filename``) made with model ``spec``,
    or None (with a ``ZooMissWarning``) when the scale has a zoo that does not hold it, or None
    when it has none."""
    manifest = read_manifest(scale)
    if manifest is None or filename not in KINDS:
        return None
    if scale not in _STAMPED and not os.environ.get(BUILDING_ENV):
        check_cache_stamp(scale, manifest)
        _STAMPED.add(scale)
    entry = manifest["entries"].get(entry_id(key, filename))
    if entry is not None and entry["key"] == json.loads(json.dumps(key, default=str)):
        if entry.get("spec") == spec_dict(spec):
            if _SERVED is not None:
                _SERVED.add(entry_id(key, filename))
            return load_entry(scale, entry)
        why = (f"zoo entry {entry['file']} was made with another model spec: "
               + _listed(_differences(spec_dict(spec) or {}, entry.get("spec") or {})))
    else:
        why = mismatch(key, filename, manifest)
    if not os.environ.get(BUILDING_ENV):
        warnings.warn(f"model zoo: no entry matches this {Path(filename).stem} model "
                      f"({entry_id(key, filename)}): {why}; training it here (make zoo would "
                      f"ship it)", ZooMissWarning, stacklevel=3)
    return None


def load_or_train(key: dict[str, Any], filename: str, compute: Callable[[], T], *, scale: str,
                  force: bool = False, spec: Any = None) -> T:
    """``io.load_or_compute`` with the zoo in front: a trained model the zoo holds (same key,
    same model ``spec``) is loaded from it (``force`` skips the zoo and retrains into the
    cache)."""
    if not force:
        stored = lookup(key, filename, scale, spec=spec)
        if stored is not None:
            return stored  # type: ignore[return-value]
    value = load_or_compute(key, filename, compute, scale=scale, force=force)
    if _RECORDER is not None:
        _RECORDER.append((key, filename, spec_dict(spec)))
    return value


_RECORDER: list[tuple[dict[str, Any], str, dict[str, Any] | None]] | None = None


def record(into: list[tuple[dict[str, Any], str, dict[str, Any] | None]] | None) -> None:
    """Collect (key, filename, spec) of every entry ``load_or_train`` trains or reads from the
    cache into ``into`` (None stops): how ``make zoo`` learns what a store call made."""
    global _RECORDER
    _RECORDER = into


_SERVED: set[str] | None = None


def record_served(into: set[str] | None) -> None:
    """Collect the id of every entry ``lookup`` serves from the zoo into ``into`` (None stops):
    how ``make zoo`` learns which entries the plan still uses."""
    global _SERVED
    _SERVED = into
