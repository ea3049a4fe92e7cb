"""Where a run's wall time goes: seconds per run kind, per notebook process.

``timed(kind)`` wraps the expensive calls: ``train`` (a generator, tokenizer or feature network
trained here), ``zoo`` (a model read from the zoo), ``unlearn``, ``complete`` (completions of
test images) and ``score`` (feature extraction and metrics). Times are exclusive: a ``train``
inside an ``unlearn`` (the ``retrain`` method) counts as training only. With
``$L2L_PROFILE_DIR`` set (``make run`` sets it), every block rewrites
``<dir>/<$L2L_NOTEBOOK or pid>.json`` with the totals so far, so a killed process leaves what it
measured. ``python -m l2l.bench --make-small`` turns those files and the notebooks' wall times
into ``results/<scale>/bench_make_small.csv``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

KINDS = ("train", "zoo", "unlearn", "complete", "score")
_TOTALS: dict[str, list[float]] = {}  # kind -> [seconds, calls]
_STACK: list[list[float]] = []  # per open block: [start, seconds spent in inner blocks]


@contextmanager
def timed(kind: str) -> Iterator[None]:
    """Add the block's exclusive wall time to ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown run kind {kind!r}; choose one of {', '.join(KINDS)}")
    frame = [time.perf_counter(), 0.0]
    _STACK.append(frame)
    try:
        yield
    finally:
        _STACK.pop()
        total = time.perf_counter() - frame[0]
        if _STACK:
            _STACK[-1][1] += total
        entry = _TOTALS.setdefault(kind, [0.0, 0])
        entry[0] += total - frame[1]
        entry[1] += 1
        _flush()


def totals() -> dict[str, dict[str, float]]:
    """``{kind: {"seconds", "calls"}}`` of this process so far."""
    return {k: {"seconds": round(v[0], 3), "calls": int(v[1])} for k, v in _TOTALS.items()}


def _flush() -> None:
    folder = os.environ.get("L2L_PROFILE_DIR")
    if not folder:
        return
    from l2l.io import write_json

    name = os.environ.get("L2L_NOTEBOOK") or f"pid{os.getpid()}"
    write_json(Path(folder) / f"{name}.json", {"process": name, "kinds": totals()})


def make_table(profile_dir: Path, *, run: str) -> "pd.DataFrame":
    """``bench_make_small.csv`` rows from a ``make run``'s profile folder: per notebook its wall
    time (``kind = "notebook"``), the seconds of each run kind inside it, and ``other`` (kernel
    start, imports, data, cached reads, tables, figures); then the totals. ``run`` labels the
    run ("cold" or "warm")."""
    import pandas as pd

    walls = pd.read_csv(profile_dir / "notebooks.csv")
    rows = []
    for nb, wall_ms in zip(walls["notebook"], walls["wall_ms"]):
        wall = wall_ms / 1000
        path = profile_dir / f"{nb}.json"
        kinds = json.loads(path.read_text())["kinds"] if path.exists() else {}
        rows.append({"run": run, "notebook": nb, "kind": "notebook", "seconds": wall, "calls": 1})
        for kind in KINDS:
            got = kinds.get(kind, {"seconds": 0.0, "calls": 0})
            rows.append({"run": run, "notebook": nb, "kind": kind, **got})
        rows.append({"run": run, "notebook": nb, "kind": "other", "calls": 0,
                     "seconds": wall - sum(k["seconds"] for k in kinds.values())})
    table = pd.DataFrame(rows)
    total = table.groupby("kind", sort=False, as_index=False)[["seconds", "calls"]].sum()
    table = pd.concat([table, total.assign(run=run, notebook="total")], ignore_index=True)
    table["seconds"] = table["seconds"].round(1)
    return table[["run", "notebook", "kind", "seconds", "calls"]]
