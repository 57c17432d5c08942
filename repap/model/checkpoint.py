"""Model checkpoints: one file, safe to load.

A checkpoint is a ``torch.save`` of plain containers only: ``{"format", "version",
"metadata" (a JSON string), "state_dict" (tensors), and for resuming "optimizer",
"scheduler"}``. It is read with ``torch.load(weights_only=True)``, which never unpickles
arbitrary objects. The metadata holds everything needed to generate from the model without
the training data: model and training config, grid, sigma in Angstrom and per axis, cell,
pbc, atomic numbers, atom order, the distribution of the first coordinate, the SHA-256 of the
training sequences, the loss history, repap/torch versions, and the SHA-256 of the weights,
checked on load so that a damaged or edited file is refused; the generation contract among
them is versioned and checked field by field (:class:`repap.model.metadata.ModelMeta`).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from repap.data.shipped import shipped_model
from repap.errors import InputError
from repap.model.metadata import META_VERSION, ModelMeta
from repap.model.recurrent import ModelConfig, RePAP

FORMAT = "repap-model"
VERSION = 1


def weights_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, shapes and float32 bytes of the weights, in name order."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().to("cpu", torch.float32).contiguous()
        h.update(f"{name}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def save(path: str | os.PathLike, model: RePAP, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (weights + ``model.meta``) and optional resume state to ``path``
    atomically: a crash while writing leaves the previous file intact."""
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    meta = dict(model.meta)
    if "first_coordinate" in meta:  # a trained model: its contract must hold before it is saved
        ModelMeta.from_dict(meta, model.n_atoms, model.config.n_bins)
        meta["meta_version"] = META_VERSION
    meta.update(
        config=model.config.to_dict(), n_atoms=model.n_atoms, weights_sha256=weights_digest(state)
    )
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "metadata": json.dumps(meta),
        "state_dict": state,
    }
    payload.update(extra or {})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # unique: two writers never share
    try:
        torch.save(payload, tmp)
    except RuntimeError as err:  # torch's writer reports a failed write (a full disk) so
        tmp.unlink(missing_ok=True)
        raise OSError(f"{path}: could not be written ({str(err).splitlines()[0][-80:]}); is "
                      "the disk full?") from None  # fmt: skip
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path


def _looks_like_structures(path: Path) -> bool:
    """A trajectory passed as a model: repap's .npz (a zip with numbers.npy) or a text format
    ASE reads (extxyz, xyz, LAMMPS dump), told apart from a torch zip by its contents."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return "numbers.npy" in z.namelist()  # torch zips hold data.pkl, not .npy files
    with open(path, "rb") as f:
        head = f.read(4096)
    return head[:1].isdigit() or head.startswith(b"ITEM:") or b"Lattice=" in head


def read(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's contents, checked: one-line ValueError for a missing, truncated,
    foreign, tampered or incompatible file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if _looks_like_structures(path):
        raise InputError(f"{path}: holds structures, not a model; train one with repap train, "
                         "or name a shipped model (repap info lists them)")  # fmt: skip
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL (\S+)", str(exc))
        if found:  # a pickled object, which weights_only loading never builds
            raise InputError(f"{path}: refused, it holds more than weights ({found[1]})") from None
        raise InputError(f"{path}: not a readable checkpoint (truncated or damaged?)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable checkpoint (truncated or damaged?)") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path}: not a repap model checkpoint")
    if payload.get("version") != VERSION:
        raise InputError(
            f"{path}: checkpoint format version {payload.get('version')!r}, this repap reads "
            f"version {VERSION}"
        )
    try:
        meta = json.loads(payload["metadata"])
        state = payload["state_dict"]
        config = ModelConfig.from_dict(meta["config"])
        n_atoms = int(meta["n_atoms"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: damaged metadata ({exc})") from None
    if not isinstance(state, dict) or weights_digest(state) != meta.get("weights_sha256"):
        raise InputError(
            f"{path}: the weights do not match their recorded SHA-256 (damaged or edited)"
        )
    if "first_coordinate" in meta:  # trained: the generation contract, field by field
        try:
            ModelMeta.from_dict(meta, n_atoms, config.n_bins)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
    payload.update(meta=meta, config=config, n_atoms=n_atoms)
    return payload


def build(payload: dict[str, Any], path: str | os.PathLike = "checkpoint") -> RePAP:
    """The model of a checked checkpoint payload (from :func:`read`)."""
    meta = {
        k: v for k, v in payload["meta"].items() if k not in ("config", "n_atoms", "weights_sha256")
    }
    with torch.device("meta"):  # the recorded config's shapes, before any memory is taken
        probe = RePAP(payload["config"], payload["n_atoms"], meta)
    shapes = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in payload["state_dict"].items()}
    if shapes != stored:
        wrong = sorted(k for k in shapes.keys() | stored.keys() if shapes.get(k) != stored.get(k))
        k = wrong[0]
        raise InputError(f"{path}: weights do not fit the recorded config ({k}: "
                         f"{stored.get(k)} stored, {shapes.get(k)} recorded)")  # fmt: skip
    model = RePAP(payload["config"], payload["n_atoms"], meta)
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()[-1].strip()
        raise InputError(f"{path}: weights do not fit the recorded config ({detail})") from None
    return model


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> RePAP:
    """The trained model of a checkpoint, in eval mode on ``device``, with its ``meta``
    (cell, numbers, atom order, first-coordinate distribution, ...) ready for generation."""
    model = build(read(path), path)
    return model.to(device).eval()


def pretrained(name: str = "recommended", device: str | torch.device = "cpu") -> RePAP:
    """A model shipped with repap, trained by ``repap train`` (docs/results.md gives the commands):
    ``"paper"`` (the poster's configuration) and ``"recommended"`` (the best configuration we
    measured), both on the shipped 30-atom reference, one network; ``"networks-64"``, the
    recommended configuration on the training networks of the shipped 64-atom network set
    (``repap.reference_set()``) with 24 extra orderings each; it makes new networks;
    ``"networks-216"``, the same on the 216-atom set (``repap.reference_set(atoms=216)``) with
    8 extra orderings of the first 50 frames of each network."""
    return load_model(shipped_model(name), device)
