"""One job discipline (repap.jobs) for every command that writes: two real processes on one
output never both finish, and the output is one whole run's; Ctrl-C and a killed parent stop
repap dataset's workers; bounds, early checks and messages for the cases of issue 34."""

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import repap
from repap.cli import main

SHORT_MD = ["--melt-time", "1", "--quench-time", "1", "--equilibrate-time", "0.5",
            "--stride", "5"]  # fmt: skip
ENV = dict(os.environ, OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    ref = repap.reference()
    for n in (3, 4):
        ref[: n * 100 : 100].write(folder / f"frames-{n}.npz")
    ref[:40].write(folder / "train.npz")
    return folder


def writers(inputs: Path) -> dict:
    """command -> (argv of run A, argv of run B, output name, which run wrote it: "A"/"B")."""

    def by_len(a: int, b: int):
        return lambda out: {a: "A", b: "B"}.get(len(repap.read(out)))

    train = ["train", str(inputs / "train.npz"), "--bins", "12", "--hidden", "16",
             "--batch-size", "8", "--quiet", "--precision", "float32", "--out", "m.pt"]  # fmt: skip
    ens = str(inputs / "frames-3.npz")
    evaluate = ["evaluate", ens, "--reference", "a-si-30:heldout", "--training", "none",
                "--snapshots-only", "--no-energy", "--out", "rep", "--quiet"]  # fmt: skip
    return {
        "generate": (["generate", "recommended", "-n", "20", "--out", "g.npz", "--quiet"],
                     ["generate", "recommended", "-n", "30", "--out", "g.npz", "--quiet"],
                     "g.npz", by_len(20, 30)),
        "relax": (["relax", str(inputs / "frames-3.npz"), "--out", "r.npz", "--quiet"],
                  ["relax", str(inputs / "frames-4.npz"), "--out", "r.npz", "--quiet"],
                  "r.npz", by_len(3, 4)),
        "rebuild": (["rebuild", "-n", "1", "--out", "b.npz", "--quiet", "--seed", "1"],
                    ["rebuild", "-n", "2", "--out", "b.npz", "--quiet", "--seed", "9"],
                    "b.npz", by_len(1, 2)),
        "simulate": (["simulate", "--out", "s.npz", "--frames", "3", *SHORT_MD, "--quiet"],
                     ["simulate", "--out", "s.npz", "--frames", "4", *SHORT_MD, "--quiet"],
                     "s.npz", by_len(3, 4)),
        "inspect": (["inspect", str(inputs / "frames-3.npz"), "--write", "i.extxyz"],
                    ["inspect", str(inputs / "frames-4.npz"), "--write", "i.extxyz"],
                    "i.extxyz", by_len(3, 4)),
        "train": ([*train, "--epochs", "1"], [*train, "--epochs", "2"], "m.pt",
                  lambda out: {1: "A", 2: "B"}.get(len(repap.load_model(out).meta["history"]))),
        "search": (["search", "-n", "1", "--out", "q.npz", "--quiet", "--moves-per-atom", "1"],
                   ["search", "-n", "2", "--out", "q.npz", "--quiet", "--moves-per-atom", "1"],
                   "q.npz", by_len(1, 2)),
        "evaluate": ([*evaluate, "--nbins", "50"], [*evaluate, "--nbins", "60"], "rep",
                     lambda out: {50: "A", 60: "B"}.get(
                         json.loads((out / "report.json").read_text())["settings"]["nbins"])),
    }  # fmt: skip


def start(argv: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "repap", *argv], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=600)
    return proc.returncode, err


def lock_of(out: Path) -> Path:
    return out.with_name(f".{out.name}.lock")


@pytest.mark.parametrize("command", ["generate", "relax", "rebuild", "simulate", "inspect",
                                     "train", "evaluate"])  # fmt: skip
def test_a_second_writer_during_or_after_the_first_is_refused(command, inputs, tmp_path):
    a, b, name, which = writers(inputs)[command]
    out = tmp_path / name
    first = start(a, tmp_path)
    while first.poll() is None and not lock_of(out).exists():  # B starts while A holds OUT
        time.sleep(0.02)
    second = start(b, tmp_path)
    (rc_a, err_a), (rc_b, err_b) = finish(first), finish(second)
    assert rc_a == 0, err_a
    assert rc_b == 2 and err_b.count("\n") == 1, err_b
    assert "another run is writing it" in err_b or "exists; pass --overwrite" in err_b
    assert which(out) == "A"
    rc_b, err_b = finish(start(b, tmp_path))  # after A: refused, A's output kept
    assert rc_b == 2 and "exists; pass --overwrite to replace it" in err_b
    assert which(out) == "A"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


@pytest.mark.slow
@pytest.mark.parametrize("command", ["generate", "relax", "rebuild", "simulate", "inspect",
                                     "train", "evaluate", "search"])  # fmt: skip
def test_two_writers_at_many_offsets_never_both_finish(command, inputs, tmp_path):
    """The probes of issue 34: B started 0 .. 1.2x A's duration after A, in steps."""
    a, b, name, which = writers(inputs)[command]
    t0 = time.perf_counter()
    assert finish(start(a, tmp_path))[0] == 0
    alone = time.perf_counter() - t0
    for k, offset in enumerate(np.linspace(0, 1.2 * alone, 7)):
        cwd = tmp_path / f"offset-{k}"
        cwd.mkdir()
        first = start(a, cwd)
        time.sleep(offset)
        second = start(b, cwd)
        (rc_a, _), (rc_b, _) = finish(first), finish(second)
        assert sorted([rc_a, rc_b]) == [0, 2], (offset, rc_a, rc_b)
        assert which(cwd / name) == ("A" if rc_a == 0 else "B"), offset


def test_dataset_one_build_per_folder_and_ctrl_c_stops_its_workers(tmp_path):
    """A second build of one folder is refused while the first runs; Ctrl-C to the first
    stops it and its workers within 5 s, keeping finished runs; a killed parent's workers
    die with it."""
    argv = ["dataset", "runs", "--runs", "6", "--atoms", "16", "--frames", "10000",
            "--stride", "50", *SHORT_MD[:4], "--equilibrate-time", "0.5", "--workers", "2",
            "--quiet"]  # fmt: skip
    first = start(argv, tmp_path)
    workers = _children_when_busy(first.pid, 2)
    second = start(argv, tmp_path)
    rc, err = finish(second)
    assert rc == 2 and "runs: another run is writing it" in err, err
    t0 = time.perf_counter()
    first.send_signal(signal.SIGINT)
    rc, err = finish(first)
    assert time.perf_counter() - t0 < 5.0
    assert rc == 130 and "interrupted; run the same command again to resume" in err, err
    _assert_gone(workers)
    assert not list((tmp_path / "runs").glob(".*.tmp.npz"))  # no half-written run
    # SIGKILL: nothing runs on without its parent
    first = start(argv, tmp_path)
    workers = _children_when_busy(first.pid, 2)
    first.kill()
    finish(first)
    _assert_gone(workers)


def _children_when_busy(pid: int, n: int) -> list[int]:
    for _ in range(600):
        kids = [int(k) for t in Path(f"/proc/{pid}/task").iterdir()
                for k in (t / "children").read_text().split()]  # fmt: skip
        workers = [k for k in kids if "spawn_main" in Path(f"/proc/{k}/cmdline").read_text()]
        if len(workers) >= n:
            time.sleep(1.0)  # into their runs
            return workers
        time.sleep(0.05)
    raise AssertionError("the workers never started")


def _assert_gone(pids: list[int]) -> None:
    deadline = time.perf_counter() + 5.0
    while time.perf_counter() < deadline:
        alive = [p for p in pids if Path(f"/proc/{p}").exists()
                 and "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2]]  # fmt: skip
        if not alive:
            return
        time.sleep(0.05)
    raise AssertionError(f"workers {alive} outlived their parent")


# -- bounds, early checks and messages -------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "{ens}", "--rmax", "200", "--out", "o"], "rmax: expected above 0 and at "
         "most"),
        (["evaluate", "{ens}", "--seed", "-1", "--out", "o"], "seed: expected an integer >= 0"),
        (["evaluate", "{ens}", "--snapshots-only", "--judge", "--out", "o"], "judge: judges "
         "the relaxed networks"),
        (["evaluate", "{one}", "--reference", "{one}", "--out", "o"], "structures of 1 atom"),
        (["evaluate", "{ens}", "--out", "{ens}", "--overwrite"], "holds an input of this "
         "evaluation"),
        (["evaluate", "{ens}", "--out", "{inputs}", "--overwrite"], "holds an input of this "
         "evaluation"),
        (["train", "{ens}", "--seed", "-1", "--out", "m.pt"], "seed: expected an integer >= 0"),
        (["train", "a-si-64", "--augment", "100000", "--out", "m.pt"], "augment: 100000 extra "
         "orderings of"),
        (["rebuild", "-n", "1000000000000", "--chunk", "1000000000000", "--out", "b.npz"],
         "n: 1,000,000,000,000 networks of 64 atoms need about"),
        (["relax", "{ens}", "--potential", "sw", "--pair-style", "tersoff", "--pair-coeff",
          "* * SiC.tersoff Si", "--out", "r.npz"], "--potential: a built-in potential, or"),
        (["dataset", "runs", "--runs", "1", "--out", "s.extxyz"], "s.extxyz: a set is written "
         "as .npz"),
        (["inspect", "{ens}", "--index", "abc"], "index: expected an int or 'start:stop:step', "
         "got 'abc'"),
        (["evaluate", "{carbon}", "--reference", "{carbon}", "--out", "o"], "ensemble: holds "
         "Z=6; evaluation as networks relaxes with Vink's Si potential"),
    ],
)  # fmt: skip
def test_user_mistakes_are_one_line_and_exit_2_before_any_work(argv, message, inputs, tmp_path,
                                                               monkeypatch, capsys):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    one = repap.Trajectory(np.zeros((2, 1, 3)), np.eye(3) * 5, [14])
    one.write("one.npz")
    carbon = repap.read(inputs / "frames-3.npz")
    carbon = repap.Trajectory(carbon.positions, carbon.cell, np.full(30, 6))
    carbon.write(inputs / "carbon.npz")
    names = {"ens": str(inputs / "frames-3.npz"), "one": "one.npz",
             "carbon": str(inputs / "carbon.npz"), "inputs": str(inputs)}  # fmt: skip
    argv = [a.format(**names) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.npz"]  # nothing was made


def test_evaluate_judge_without_chgnet_stops_before_work(inputs, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "chgnet" else real(name, *a))  # fmt: skip
    ens = repap.read(inputs / "frames-3.npz")
    with pytest.raises(ValueError, match=r"^judge: the energy judge needs CHGNet"):
        repap.evaluate(ens, repap.reference(heldout=True), judge=True)


def test_a_crafted_checkpoint_is_refused_before_its_weights_are_allocated(tmp_path):
    """hidden = 2,000,000 in the recorded config (the weights' digest still right): refused
    from the shapes, in a process that could not allocate the 9 GB the config implies."""
    import torch

    from repap.data.shipped import shipped_model

    payload = torch.load(shipped_model("recommended"), weights_only=True)
    meta = json.loads(payload["metadata"])
    meta["config"]["hidden"] = 2_000_000
    payload["metadata"] = json.dumps(meta)
    torch.save(payload, tmp_path / "big.pt")
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30)); "
            "from repap.cli import main; sys.exit(main(['generate', sys.argv[1], '-n', '1', "
            "'--out', 'g.npz']))")  # fmt: skip
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "big.pt")], cwd=tmp_path,
                         capture_output=True, text=True, env=ENV)  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "weights do not fit the recorded config (" in run.stderr
    assert "2000000) recorded" in run.stderr and run.stderr.count("\n") == 1


def test_dataset_names_a_damaged_protocol_and_a_foreign_run(tmp_path, capsys):
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "protocol.json").write_text("")
    assert main(["dataset", str(folder), "--runs", "1", "--quiet"]) == 2
    assert "protocol.json: damaged" in capsys.readouterr().err
    (folder / "protocol.json").unlink()
    repap.reference()[:2].write(folder / "run-000001.npz")  # not a dataset run
    assert main(["dataset", str(folder), "--runs", "1", "--out", str(tmp_path / "s.npz"),
                 "--atoms", "30", "--frames", "2", "--quiet"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "run-000001.npz: not a run of repap dataset" in err and err.count("\n") == 1


def test_a_damaged_chunk_is_made_again(inputs, tmp_path, capsys):
    src = inputs / "frames-4.npz"
    whole = tmp_path / "whole.npz"
    assert main(["relax", str(src), "--out", str(whole), "--chunk", "2", "--quiet"]) == 0
    out = tmp_path / "out.npz"
    parts = tmp_path / "out.npz.parts"
    parts.mkdir()
    # the record of that run, and a chunk cut short by a crash or a full disk
    from repap.jobs import file_digest

    settings = json.loads(json.dumps(repap.read(whole).info["relax"]))
    assert settings["source_sha256"] == file_digest(src)
    (parts / "run.json").write_text(json.dumps(settings))
    (parts / "chunk-000000.npz").write_bytes(b"PK\x03\x04 cut short")
    with warnings.catch_warnings():  # shown on stderr as a user would see it, not raised
        warnings.simplefilter("always")
        assert main(["relax", str(src), "--out", str(out), "--chunk", "2", "--quiet"]) == 0
    assert "warning: " in (err := capsys.readouterr().err)
    assert "chunk-000000.npz: damaged, made again" in err
    np.testing.assert_array_equal(repap.read(out).positions, repap.read(whole).positions)


def test_a_pickled_npz_gets_repaps_words_not_numpys(tmp_path):
    np.savez(tmp_path / "p.npz", format=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError) as err:
        repap.read(tmp_path / "p.npz")
    assert "allow_pickle" not in str(err.value) and "not plain data" in str(err.value)


def test_sizes_read_in_their_unit():
    from repap.jobs import size_text

    assert [size_text(x) for x in (512, 8192, 3.2e6, 2.5e9)] == [
        "512 bytes", "8.2 KB", "3.2 MB", "2.5 GB"]  # fmt: skip


def test_random_start_checks_only_near_atoms_with_the_same_result():
    """The grid start draws and decides as the all-pairs check does (an independent,
    brute-force version here), and places 20,000 atoms."""
    from repap.sim.md import MeltQuench, random_start

    def brute(n, length, dmin, rng):
        pos = np.empty((n, 3))
        for i in range(n):
            while True:
                t = rng.random(3) * length
                d = pos[:i] - t
                d -= length * np.round(d / length)
                if i == 0 or np.min(np.einsum("ij,ij->i", d, d)) >= dmin**2:
                    pos[i] = t
                    break
        return pos

    for n in (30, 216, 1000):
        length = MeltQuench(atoms=n).box_length
        got = random_start(n, length, 1.8, np.random.default_rng(n))
        np.testing.assert_array_equal(got, brute(n, length, 1.8, np.random.default_rng(n)))
    big = random_start(20_000, MeltQuench(atoms=20_000).box_length, 1.8, np.random.default_rng(0))
    assert np.isfinite(big).all()


def test_a_full_disk_leaves_no_partial_file(inputs, tmp_path, monkeypatch, capsys):
    """inspect --write and train's checkpoints: a failed write leaves nothing behind (so the
    rerun is not blocked) and says what happened in one line."""
    import torch

    from repap.data.trajectory import Trajectory

    def full(self, path, *args, **kwargs):
        Path(path).write_text("half")  # what a full disk leaves, then the failure
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Trajectory, "write", full)
    out = tmp_path / "i.extxyz"
    assert main(["inspect", str(inputs / "frames-3.npz"), "--write", str(out)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    def torch_full(obj, path, *args, **kwargs):
        Path(path).write_text("half")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . PytorchStreamWriter "
                           "failed writing file data/0: file write failed")  # fmt: skip

    monkeypatch.setattr(torch, "save", torch_full)
    argv = ["train", str(inputs / "train.npz"), "--bins", "12", "--hidden", "16", "--epochs", "1",
            "--batch-size", "8", "--quiet", "--out", str(tmp_path / "m.pt")]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "m.pt: could not be written" in err and "is the disk full?" in err
    assert err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no hidden .m.pt.tmp, no lock


def test_a_relaxation_that_fails_everywhere_says_so():
    from repap.evaluation.network_report import _relaxed

    apart = repap.Trajectory(np.zeros((2, 2, 3)), np.eye(3) * 6, [14, 14])  # atoms on top
    with pytest.raises(RuntimeError, match=r"^relaxation: none of 2 structures converged"):
        _relaxed(apart, 1e-3, progress=False)


def test_overwrite_replaces_only_a_folder_of_its_own(inputs, tmp_path, capsys):
    """evaluate --overwrite over a folder holding the user's own files is refused (nothing
    deleted); over an earlier report it replaces it whole."""
    out = tmp_path / "rep"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = ["evaluate", str(inputs / "frames-3.npz"), "--snapshots-only", "--no-energy",
            "--quiet", "--out", str(out), "--overwrite"]  # fmt: skip
    assert main(argv) == 2
    assert "rep: holds notes.txt, which this command does not write" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    (out / "report.md").write_text("an earlier report")
    assert main(argv) == 0
    assert (out / "report.md").read_text().startswith("# repap evaluate")


def test_odd_output_names_work(inputs, tmp_path, monkeypatch):
    """ "." as a folder output, and compressed formats whose name has two suffixes."""
    from repap.jobs import claim_parts, output_job

    monkeypatch.chdir(tmp_path)
    with output_job(".", check=False) as job:
        assert job.out == tmp_path
    assert main(["inspect", str(inputs / "frames-3.npz"), "--write", "f.xyz.gz"]) == 0
    assert len(repap.read(tmp_path / "f.xyz.gz")) == 3
    # a chunk's temporary file is not a finished chunk: a rerun with other arguments goes on
    parts = tmp_path / "o.npz.parts"
    parts.mkdir()
    (parts / "run.json").write_text('{"a": 1}')
    (parts / "chunk-000000.npz.tmp.npz").write_bytes(b"half")
    with output_job(tmp_path / "o.npz"):
        claim_parts(parts, {"a": 2})
    assert json.loads((parts / "run.json").read_text()) == {"a": 2}
