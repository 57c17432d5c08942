"""repap generate: every output format, resuming an interrupted run, torchrun sharding."""

import os
import re
import shutil
import subprocess
import sys

import ase.db
import ase.io
import numpy as np
import pytest

import repap
from repap.cli import main
from repap.generation import chunked as gen
from repap.model.recurrent import ModelConfig
from repap.training.loop import TrainConfig

N = 45
BATCH = 16  # 3 chunks


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    rng = np.random.default_rng(5)
    cell = np.eye(3) * 7.0
    frac = rng.random((60, 6, 3))
    traj = repap.Trajectory(frac @ cell, cell, np.full(6, 14), np.ones(3, bool))
    path = tmp_path_factory.mktemp("model") / "m.pt"
    config = TrainConfig(model=ModelConfig(n_bins=24, hidden=16), epochs=1, batch_size=16)
    repap.train(traj, config, out=path, progress=False)
    return path


def run_cli(model_path, out, *extra):
    return main(["generate", str(model_path), "-n", str(N), "--out", str(out),
                 "--batch-size", str(BATCH), "--quiet", "--seed", "2", *extra])  # fmt: skip


def test_all_formats_hold_the_same_structures(model_path, tmp_path, capsys):
    # the command's default temperature is the recommended 0.5
    expected = repap.load_model(model_path).sample(N, seed=2, temperature=0.5)
    for suffix in ("xyz", "npz", "db"):
        assert run_cli(model_path, tmp_path / f"e.{suffix}") == 0
        assert "structures/s" in capsys.readouterr().out
        traj = repap.read(tmp_path / f"e.{suffix}")
        np.testing.assert_allclose(traj.positions, expected.positions, atol=1e-6)
        assert not (tmp_path / f"e.{suffix}.parts").exists()
    frames = ase.io.read(tmp_path / "e.xyz", ":")
    assert [a.info["structure"] for a in frames] == expected.index.tolist()
    assert [a.info["redrawn"] for a in frames] == expected.redrawn.tolist()
    with np.load(tmp_path / "e.npz") as data:
        np.testing.assert_array_equal(data["restarts"], expected.restarts)
    assert repap.read(tmp_path / "e.npz").info["seconds_per_structure"] > 0  # the cost record
    rows = list(ase.db.connect(str(tmp_path / "e.db")).select())
    assert [r.structure for r in rows] == expected.index.tolist()


def test_interrupted_run_resumes_to_the_same_file(model_path, tmp_path, monkeypatch):
    assert run_cli(model_path, tmp_path / "whole.xyz") == 0
    save = gen._save_chunk
    calls = []

    def interrupted(path, ens, seconds):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(path)
        save(path, ens, seconds)

    monkeypatch.setattr(gen, "_save_chunk", interrupted)
    assert run_cli(model_path, tmp_path / "resumed.xyz") == 130
    assert not (tmp_path / "resumed.xyz").exists()
    assert len(list((tmp_path / "resumed.xyz.parts").glob("chunk-*.npz"))) == 2
    monkeypatch.setattr(gen, "_save_chunk", save)
    made = []
    monkeypatch.setattr(
        gen,
        "sample_checked",
        lambda *a, **k: made.append(k["start"]) or repap.model.sampling.sample_checked(*a, **k),
    )
    assert run_cli(model_path, tmp_path / "resumed.xyz") == 0
    assert made == [32]  # only the missing chunk was generated
    assert (tmp_path / "resumed.xyz").read_text() == (tmp_path / "whole.xyz").read_text()


def test_refuses_to_overwrite_or_mix_runs(model_path, tmp_path, capsys):
    out = tmp_path / "e.xyz"
    out.write_text("precious")
    assert run_cli(model_path, out) == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_text() == "precious"
    parts = tmp_path / "f.xyz.parts"
    parts.mkdir()
    (parts / "run.json").write_text('{"seed": 1}')
    (parts / "chunk-000000.npz").write_bytes(b"finished by that run")
    assert run_cli(model_path, tmp_path / "f.xyz") == 2
    assert "1 finished chunk(s) of a run with other arguments (" in capsys.readouterr().err
    assert (parts / "chunk-000000.npz").exists()  # kept: a rerun with those may resume
    assert run_cli(model_path, tmp_path / "f.xyz", "--overwrite") == 0  # discarded on request
    assert len(repap.read(tmp_path / "f.xyz")) == N
    # a failed start (a record, no finished chunk) does not block the corrected rerun
    (tmp_path / "f2.xyz.parts").mkdir()
    (tmp_path / "f2.xyz.parts" / "run.json").write_text('{"seed": 1}')
    assert run_cli(model_path, tmp_path / "f2.xyz") == 0
    capsys.readouterr()
    assert run_cli(model_path, tmp_path / "g.cif") == 2
    assert "unknown output format" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "missing.pt"), "-n", "2", "--out",
                 str(tmp_path / "h.xyz")]) == 2  # fmt: skip
    assert "no such checkpoint" in capsys.readouterr().err


def test_torchrun_two_ranks_equal_one_process(model_path, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    run = subprocess.run(
        [torchrun, "--nproc-per-node", "2", "-m", "repap", "generate", str(model_path),
         "-n", str(N), "--out", str(tmp_path / "ddp.npz"), "--batch-size", str(BATCH),
         "--quiet", "--seed", "2"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert run_cli(model_path, tmp_path / "one.npz") == 0
    ddp, one = repap.read(tmp_path / "ddp.npz"), repap.read(tmp_path / "one.npz")
    np.testing.assert_array_equal(ddp.positions, one.positions)


@pytest.mark.parametrize(
    "bad",
    [
        ["--temperature", "0"],
        ["--max-retries", "-1"],
        ["--max-restarts", "-2"],
        ["--min-dist", "9"],
    ],
)
def test_bad_arguments_touch_no_disk_so_the_corrected_rerun_runs(model_path, tmp_path, bad):
    out = tmp_path / "g.npz"
    assert run_cli(model_path, out, *bad) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no OUT.parts left behind
    assert run_cli(model_path, out) == 0


def test_an_ensemble_the_disk_cannot_hold_is_refused_at_once(model_path, tmp_path, capsys):
    out = tmp_path / "huge.npz"
    free = shutil.disk_usage(tmp_path).free
    atoms = len(repap.load_model(model_path).meta["numbers"])
    n = free // (atoms * 12) + 1  # more than the chunks alone could fit
    assert main(["generate", str(model_path), "-n", str(n), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        f"repap generate: error: n: {n:,} structures of {atoms} atoms in "
        "huge.npz.parts and huge.npz need about "
    )
    assert "GB free" in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []


def test_failed_structures_count_in_the_summary(model_path, tmp_path, capsys):
    # a minimum distance few structures meet: the work the failed ones cost is reported too
    out = tmp_path / "f.npz"
    argv = ["generate", str(model_path), "-n", "6", "--out", str(out), "--min-dist", "3.2",
            "--max-retries", "1", "--max-restarts", "1", "--quiet"]  # fmt: skip
    assert main(argv) == 1
    line = capsys.readouterr().out
    made, failed = (int(w) for w in re.findall(r"(\d+) structures, (\d+) failed", line)[0])
    assert made + failed == 6 and failed >= 1
    restarts = int(re.search(r"restarts (\d+)", line).group(1))
    assert restarts >= 2 * failed  # each failed structure used its restart and one more
    assert float(re.search(r"atoms redrawn ([\d.]+) %", line).group(1)) > 0


def test_torchrun_refusal_on_rank_0_stops_every_rank(model_path, tmp_path):
    # OUT.parts left by a run with other arguments: rank 0 refuses while locking it, and rank 1
    # must stop too instead of waiting at the next barrier
    out = tmp_path / "ddp.npz"
    parts = tmp_path / "ddp.npz.parts"
    parts.mkdir()
    (parts / "run.json").write_text('{"n": 1}')
    (parts / "chunk-000000.npz").write_bytes(b"that run's")  # what a takeover would lose
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    run = subprocess.run(
        [torchrun, "--nproc-per-node", "2", "-m", "repap", "generate", str(model_path),
         "-n", "8", "--out", str(out), "--quiet"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert run.returncode != 0
    assert "finished chunk(s) of a run with other arguments" in run.stderr
    assert "other rank(s) failed" in run.stderr
