"""Static checks: notebooks are committed clean and follow the house conventions."""

import ast
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_quickstart.ipynb"


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def nb(request):
    return request.param, json.loads(request.param.read_text())


def test_name_and_kernel(nb):
    path, data = nb
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name)
    assert data["metadata"]["kernelspec"]["name"] == "python3"


def test_one_parameters_cell_of_literals(nb):
    _, data = nb
    params = [c for c in data["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1
    tree = ast.parse("".join(params[0]["source"]))
    names = []
    for stmt in tree.body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1, ast.dump(stmt)
        ast.literal_eval(stmt.value)  # raises on anything but a literal
        names.append(stmt.targets[0].id)
    assert {"SCALE", "SEED", "DEVICE", "DATA_ROOT"} <= set(names)
    assert ast.literal_eval(tree.body[names.index("SCALE")].value) == "small"


def test_committed_clean(nb):
    _, data = nb
    for cell in data["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_no_hidden_state(nb):
    _, data = nb
    src = "\n".join("".join(c["source"]) for c in data["cells"] if c["cell_type"] == "code")
    assert not re.search(r"sys\.path|^\s*[!%]|['\"]/[^'\"\s]+/", src, re.M)
    # every notebook writes files (claims.save_claims writes claims.csv through io.save_table)
    assert re.search(r"save_table|save_claims", src) and "save_figure" in src
