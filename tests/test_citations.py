"""Citations point at what a user can check: the papers, their released code, or l2l's README.

The package was built from internal spec documents that are not shipped. A docstring, comment,
notebook or README line that cites them ("spec paper1 Sec. 7.3", "small-scale.md", ...) sends the
reader nowhere; cite the paper (section, equation, table or figure), the released repository and
file, or say that the point is l2l's own choice.
"""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# internal-spec citations; not the model-spec objects of ``l2l.models`` (``Encoder(spec)``)
SPEC_CITATION = re.compile(
    r"spec paper[12]|spec Sec\.|spec §|shared/spec|small-scale\.md|style\.md|paper[12]\.md"
    r"|spec bug|the spec's|open choice \d")


def _files() -> list[Path]:
    files = sorted((ROOT / "l2l").rglob("*.py")) + sorted((ROOT / "tests").rglob("*.py"))
    files += sorted((ROOT / "notebooks").glob("*.ipynb"))
    files += [ROOT / "README.md", ROOT / "results" / "README.md"]
    return [f for f in files if f.exists() and f.resolve() != Path(__file__).resolve()]


def _lines(path: Path) -> list[tuple[str, str]]:
    """(where, text) per line; a notebook line is named by its cell and the line in the cell."""
    if path.suffix != ".ipynb":
        return [(str(i), line) for i, line in enumerate(path.read_text().splitlines(), 1)]
    cells = json.loads(path.read_text())["cells"]
    out = []
    for c, cell in enumerate(cells):
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        out += [(f"cell {c} line {i}", line) for i, line in enumerate(source.splitlines(), 1)]
    return out


def spec_citations() -> list[str]:
    return [f"{path.relative_to(ROOT)}:{where}: {text.strip()}"
            for path in _files() for where, text in _lines(path) if SPEC_CITATION.search(text)]


def test_the_pattern_catches_spec_citations_but_not_model_specs():
    for cited in ("(spec paper1 Sec. 7.3)", "spec Sec. 2.3", "spec paper2 §4–5", "small-scale.md",
                  "`../shared/spec/paper2.md`", "(spec bug)", "open choice 18", "the spec's recipe"):
        assert SPEC_CITATION.search(cited), cited
    for code in ("Encoder(spec)", "dataclasses.replace(spec, unet=u)", 'Expected keys (spec "base")',
                 "model.spec.patch_size", "an open choice documented"):
        assert not SPEC_CITATION.search(code), code


def test_no_citation_of_internal_spec_documents():
    hits = spec_citations()
    assert not hits, "internal spec cited (cite the paper, the released code or l2l's choice):\n" + \
        "\n".join(hits)
