"""The command lines of the README and docs/: each parses with repap's own parser, and every
file it reads exists (in the repository), is a shipped model or set, or is written by another
command on the same page; the README's walkthrough runs as written (slow)."""

import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repap.cli import build_parser
from repap.data.shipped import MODELS, SETS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
INPUTS = {"evaluate": ("ensemble", "reference", "training"), "train": ("trajectory",),
          "generate": ("model",), "relax": ("structures",), "inspect": ("file",)}  # fmt: skip


def commands(page: Path) -> list[list[str]]:
    """Each `repap ...` line of the page's shell blocks, as arguments after `repap`."""
    found = []
    for block in re.findall(r"```(?:sh|bash|console)\n(.*?)```", page.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if "-m" in words and words[0] == "torchrun":  # torchrun ... -m repap CMD
                words = words[words.index("-m") + 1 :]
            if words[:1] == ["repap"]:
                found.append(words[1:])
    return found


def outputs(args) -> set[str]:
    out = getattr(args, "out", None)
    if not out:
        return set()
    made = {out, out.rstrip("/")}
    if getattr(args, "runs", 1) > 1 and args.command == "simulate":  # nets.npz: nets-run0.npz
        stem, _, suffix = out.rpartition(".")
        made |= {f"{stem}-run{k}.{suffix}" for k in range(args.runs)}
    return made


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_parses_and_reads_what_exists(page):
    parser = build_parser()
    lines = commands(page)
    parsed = []
    for words in lines:
        try:
            parsed.append(parser.parse_args(words))
        except SystemExit:
            pytest.fail(f"{page.name}: `repap {' '.join(words)}` does not parse")
    made = set().union(*(outputs(a) for a in parsed)) if parsed else set()
    for words, args in zip(lines, parsed, strict=True):
        for name in INPUTS.get(args.command, ()):
            value = getattr(args, name)
            if value is None or value == "none":
                continue
            known = value in SETS or value in MODELS or value in made or (ROOT / value).exists()
            assert known, f"{page.name}: `repap {' '.join(words)}`: {value} comes from nowhere"


def test_the_readme_walkthrough_states_its_times():
    lines = [w for w in commands(ROOT / "README.md")]
    assert len(lines) >= 5
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Walkthrough.*?```sh\n(.*?)```", text, re.S)[1]
    for line in block.splitlines():  # each command says how long it takes here
        assert re.search(r"~\s?\d+(\.\d+)? (s|min)\b", line), line


@pytest.mark.slow
def test_the_readme_walkthrough_runs_as_written(tmp_path):
    """Every command of the walkthrough, in order, in a fresh folder, as a newcomer types
    them (the times are stated beside them; about 8 minutes on 2 cores)."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"## Walkthrough.*?```sh\n(.*?)```", text, re.S)[1]
    repap = [sys.executable, "-m", "repap"]
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        assert words[0] == "repap", line
        t0 = time.perf_counter()
        subprocess.run([*repap, *words[1:]], cwd=tmp_path, check=True)
        print(f"{time.perf_counter() - t0:7.1f} s  {line}")  # pytest -s: the times to state
    assert (tmp_path / "report" / "report.md").exists()
