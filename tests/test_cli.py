"""The repap command: subcommands run, and a user's mistake is one line with exit status 2."""

import subprocess
import sys

import repap
from repap.cli import main


def test_info_prints_build(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "cuda_compiled" in out and repap.__version__ in out


def test_demo_writes_plot_and_checks(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--frames", "20", "--bins", "40"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "projection.png").stat().st_size > 1000
    error = float(out.split("max_row_sum_error")[1].split()[0])
    assert error < 1e-5


def test_bad_argument_is_one_line_exit_2(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "repap", "demo", "--out", str(tmp_path), "--frames", "0"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip() == "repap demo: error: --frames: expected at least 1, got 0"
    assert "Traceback" not in run.stderr
