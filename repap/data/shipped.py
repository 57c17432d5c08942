"""The data and models shipped with repap, by name, so a command line can say
``repap generate recommended`` or ``--reference a-si-64:heldout`` instead of a path inside the
installed package. An existing file always wins over a name (a file called ``recommended`` in
the working folder is read as a file)."""

from __future__ import annotations

import os
from pathlib import Path

from repap.data import DATA_DIR
from repap.errors import InputError

# name -> (file in repap/data, part, what it is); a part of a network set is "all", "train" or
# "heldout". The 30-atom runs are one network each: their "held-out" run is the SAME network.
SETS = {
    "a-si-30": ("a-si-30-vink.npz", "all",
                "30-atom a-Si MD run (seed 1), 40,000 frames at 300 K, one network"),
    "a-si-30:heldout": ("a-si-30-vink-heldout.npz", "all",
                        "a second 30-atom melt-quench (seed 2), 5,000 frames: the same network"),
    **{f"a-si-{n}{part}": (f"a-si-{n}-networks.npz", which, f"{n}-atom network set: {text}")
       for n in (64, 216)
       for part, which, text in ((":train", "train", "training networks"),
                                 (":heldout", "heldout", "held-out networks (never trained on)"),
                                 ("", "all", "every network"))},
}  # fmt: skip

# name -> (file in repap/data/models, what it is); docs/results.md gives the command of each
MODELS = {
    "recommended": ("a-si-30-recommended.pt", "30-atom model, the best setup measured"),
    "paper": ("a-si-30-paper.pt", "30-atom model, the poster's setup"),
    "networks-64": ("a-si-64-networks.pt", "trained across the 64-atom set's training networks"),
    "networks-216": ("a-si-216-networks.pt", "trained across the 216-atom set's training networks"),
}

# the shipped reference (held-out part) and training part for an ensemble of N atoms
BY_ATOMS = {30: ("a-si-30:heldout", "a-si-30"), 64: ("a-si-64", "a-si-64:train"),
            216: ("a-si-216", "a-si-216:train")}  # fmt: skip


def open_set(name: str):
    """The shipped set called ``name`` (a key of :data:`SETS`) as a Trajectory or NetworkSet."""
    from repap.data.trajectory import read

    if name not in SETS:
        raise InputError(f"{name}: not a shipped set; those are {', '.join(SETS)}")
    file, part, _ = SETS[name]
    path = DATA_DIR / file
    if not path.is_file():
        raise InputError(f"{name}: not shipped with this build ({path} is missing)")
    traj = read(path)
    traj = traj if part == "all" else traj.subset(part)
    traj.info["shipped"] = name  # its name in reports and checkpoints
    return traj


def structures(text: str | os.PathLike, what: str):
    """``text`` read as structures: an existing file, else a shipped set's name. ``what`` names
    the argument in the error."""
    from repap.data.trajectory import read

    if Path(text).exists():
        traj = read(text)
        traj.info.setdefault("source", str(text))  # where it came from (evaluate's --out check)
        return traj
    if str(text) in SETS:
        return open_set(str(text))
    raise InputError(f"{what} {text}: no such file, nor a shipped set ({', '.join(SETS)})")


def model_file(text: str | os.PathLike) -> Path:
    """The checkpoint ``text`` names: an existing file, else a shipped model's file."""
    if Path(text).exists():
        return Path(text)
    if str(text) in MODELS:
        return shipped_model(str(text))
    raise InputError(f"{text}: no such checkpoint file, nor a shipped model ({', '.join(MODELS)})")


def shipped_model(name: str) -> Path:
    """The file of the shipped model ``name`` (a key of :data:`MODELS`)."""
    if name not in MODELS:
        raise InputError(f"name: expected one of {tuple(MODELS)}, got {name!r}")
    path = DATA_DIR / "models" / MODELS[name][0]
    if not path.is_file():
        raise InputError(f"{path}: this repap was installed without its pretrained models")
    return path


def catalogue() -> list[tuple[str, str, str]]:
    """(kind, name, what it is) of everything shipped and present, for ``repap info``."""
    rows = [("model", name, text) for name, (file, text) in MODELS.items()
            if (DATA_DIR / "models" / file).is_file()]  # fmt: skip
    rows += [("set", name, text) for name, (file, _, text) in SETS.items()
             if (DATA_DIR / file).is_file()]  # fmt: skip
    return rows
