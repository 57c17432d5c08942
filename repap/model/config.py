"""How to build and train a RePAP model: plain dataclasses, importable without torch (the
command line builds its options from them)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from repap._checks import check_positive_int
from repap.errors import InputError

OUTPUTS = ("sigmoid", "softmax")


@dataclass
class ModelConfig:
    """Architecture and representation: the LSTM's width and depth, the grid, the target's
    width and the output head (sigmoid + MSE as in the paper, or softmax + cross-entropy)."""

    n_bins: int = 50
    sigma: float = 0.2  # Angstrom: standard deviation of the target Gaussian
    hidden: int = 256
    layers: int = 2
    dropout: float = 0.5
    output: str = "sigmoid"

    def __post_init__(self) -> None:
        for name in ("n_bins", "hidden", "layers"):
            check_positive_int(getattr(self, name), name)
        if self.n_bins < 2:
            raise InputError(f"n_bins: expected at least 2, got {self.n_bins}")
        if (
            not (isinstance(self.sigma, (int, float)) and math.isfinite(self.sigma))
            or self.sigma <= 0
        ):
            raise InputError(f"sigma: expected a positive number of Angstrom, got {self.sigma!r}")
        if not 0 <= self.dropout < 1:
            raise InputError(f"dropout: expected a fraction in [0, 1), got {self.dropout!r}")
        if self.output not in OUTPUTS:
            raise InputError(f"output: expected one of {OUTPUTS}, got {self.output!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = dict(data)
        # "input" chose between two CPU LSTM paths; the dense one-hot one is the only one now
        if data.get("input", "onehot") != "onehot":
            raise InputError(
                f"model config: input={data['input']!r}: repap's own CPU recurrence was removed "
                "(torch's LSTM measured faster on both CPU kinds); train the model again"
            )
        data.pop("input", None)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InputError(f"model config: unknown fields {sorted(unknown)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


OPTIMIZERS = ("rmsprop", "adam")
PRECISIONS = ("float32", "bfloat16")
SCHEDULES = ("constant", "cosine")
PRESETS = ("paper", "recommended")


@dataclass
class TrainConfig:
    """How to train. ``TrainConfig.preset("paper")`` is the poster's setup (RMSprop 1e-3,
    sigmoid + MSE, G = 50); ``"recommended"`` is the best setup we
    measured (see docs/results.md)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 20
    batch_size: int = 128
    optimizer: str = "rmsprop"
    lr: float = 1e-3
    schedule: str = "constant"
    val: float = 0.1  # fraction of frames, the last ones in time, held out for validation
    patience: int = 5  # stop after this many epochs without a better validation loss; 0: never
    seed: int = 0
    frames: int | None = None  # train on the first `frames` frames only
    precision: str = "float32"  # of the LSTM's matmul operands; "bfloat16": ~2x faster on CPUs
    augment: int = 0  # network sets: extra orderings per network (lattice symmetry + shift)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            check_positive_int(getattr(self, name), name)
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"optimizer: expected one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision: expected one of {PRECISIONS}, got {self.precision!r}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"schedule: expected one of {SCHEDULES}, got {self.schedule!r}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise InputError(f"lr: expected a positive number, got {self.lr!r}")
        if not 0 < self.val < 1:
            raise InputError(f"val: expected a fraction in (0, 1), got {self.val!r}")
        if isinstance(self.augment, bool) or not isinstance(self.augment, int) or self.augment < 0:
            raise InputError(f"augment: expected 0 or more orderings, got {self.augment!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"seed: expected an integer >= 0, got {self.seed!r}")
        if self.patience < 0:
            raise InputError(f"patience: expected 0 (off) or more epochs, got {self.patience}")
        if self.frames is not None and self.frames < 2:
            raise InputError(f"frames: expected at least 2, got {self.frames}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TrainConfig:
        if name == "paper":
            base = cls()
        elif (
            name == "recommended"
        ):  # measured: research/model-options/train_options.py, docs/results.md
            base = cls(
                model=ModelConfig(n_bins=100, sigma=0.05, output="softmax"),
                optimizer="adam", precision="bfloat16",
            )  # fmt: skip
        else:
            raise InputError(f"preset: expected one of {PRESETS}, got {name!r}")
        model_fields = {f.name for f in fields(ModelConfig)}
        model = replace(base.model, **{k: v for k, v in overrides.items() if k in model_fields})
        rest = {k: v for k, v in overrides.items() if k not in model_fields}
        return replace(base, model=model, **rest)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
