"""The Python snippets of the README and the user guide (docs/guide.md), run as written, in
order, in one namespace (a fresh folder)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "docs" / "guide.md"]  # in this order


def python_blocks() -> list[str]:
    return [b for page in PAGES for b in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)]


@pytest.mark.slow
def test_readme_python_runs_as_written(tmp_path, monkeypatch):
    blocks = python_blocks()
    assert len(blocks) >= 7
    # block 0 is the walkthrough's whole pipeline (a 1 ns melt-quench and a full training run,
    # hours on 2 cores); each of its calls is run in the blocks below, on smaller inputs
    assert "repap.simulate(out=" in blocks[0] and 'preset("recommended", epochs=2)' in blocks[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, code in enumerate(blocks[1:], 1):
        exec(compile(code, f"README.md, python block {i}", "exec"), namespace)
    assert (tmp_path / "eval" / "report.md").exists() and (tmp_path / "model.pt").exists()


def test_readme_projection_snippet_runs_as_written():
    # the small version run by default: the numpy API block, whole
    code = next(b for b in python_blocks() if "repap.project(frac" in b)
    namespace: dict = {}
    exec(compile(code, "README.md, projection block", "exec"), namespace)
    assert namespace["dens"].shape == (40_000, 90, 50) and namespace["bins"].shape == (40_000, 90)
