"""Reference data: the melt-quench target and trajectory reads.

Run: ``make bench`` (or ``.venv/bin/pytest bench/bench_data.py``). The MD benchmark is the
issue's target, 40,000 frames of 30 atoms with the default protocol (under 2 minutes); set
REPAP_BENCH_MD_FRAMES to shrink it. The read group compares repap.read (npz, and streaming
extxyz through ASE) with ase.io.read of the same extxyz into a list of Atoms.
"""

import os

import ase.io
import pytest

import repap

MD_FRAMES = int(os.environ.get("REPAP_BENCH_MD_FRAMES", 40_000))
READ_FRAMES = int(os.environ.get("REPAP_BENCH_READ_FRAMES", 40_000))


def test_simulate_default_protocol(benchmark):
    benchmark.group = f"simulate: melt-quench + {MD_FRAMES} frames"
    traj = benchmark.pedantic(
        repap.simulate, kwargs={"frames": MD_FRAMES, "progress": False}, rounds=1, iterations=1
    )
    assert len(traj) == MD_FRAMES


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("read")
    traj = repap.reference()[:READ_FRAMES]
    traj.write(folder / "ref.npz")
    traj.write(folder / "ref.extxyz")
    return folder


@pytest.mark.parametrize(
    "peer",
    ["repap.read npz", "repap.read extxyz (ASE, streamed)", "ase.io.read extxyz (list)"],
)
def test_read(benchmark, files, peer):
    benchmark.group = f"read {READ_FRAMES} frames of 30 atoms"
    if peer == "repap.read npz":
        out = benchmark.pedantic(repap.read, args=(files / "ref.npz",), rounds=3)
    elif peer.startswith("repap.read"):
        out = benchmark.pedantic(repap.read, args=(files / "ref.extxyz",), rounds=1)
    else:
        out = benchmark.pedantic(ase.io.read, args=(files / "ref.extxyz", ":"), rounds=1)
    assert len(out) == READ_FRAMES
