"""One real papermill run: parameter injection works and the quickstart writes its files."""

import json
import math
import os
from pathlib import Path

import pandas as pd
import papermill as pm

REPO = Path(__file__).resolve().parents[1]


def test_quickstart_parameter_injection(tmp_path):
    out_root = Path(os.environ["L2L_OUTPUT_ROOT"])  # set per test by conftest
    executed = tmp_path / "executed.ipynb"
    pm.execute_notebook(str(REPO / "notebooks" / "00_quickstart.ipynb"), str(executed),
                        parameters={"SCALE": "smoke", "SEED": 1}, cwd=str(REPO / "notebooks"),
                        progress_bar=False, kernel_name="python3")
    cells = json.loads(executed.read_text())["cells"]
    assert any("injected-parameters" in c["metadata"].get("tags", []) for c in cells)

    table = pd.read_csv(out_root / "results" / "smoke" / "quickstart.csv")
    assert table["model"].tolist() == ["mean fill", "noise fill", "original", "retrain", "unlearned"]
    for subset in ("forget", "retain"):
        for metric in ("fid_full", "fid_hole", "is_hole", "cos_hole", "mse_hole"):
            assert table[f"{subset}_{metric}"].map(math.isfinite).all()
    sidecar = json.loads((out_root / "results" / "smoke" / "quickstart.json").read_text())
    assert sidecar["config"]["scale"] == "smoke" and sidecar["config"]["seed"] == 1
    assert sidecar["provenance"]["extractor"] == "domain"
    assert sidecar["provenance"]["n_images"] == table["forget_n_images"][0]
    for ext in ("png", "pdf"):
        assert (out_root / "figures" / "smoke" / f"quickstart_samples.{ext}").stat().st_size > 0
