"""The weights shipped with gancli: found through weights/manifest.json, checked against their sha256.

In an installed gancli the folder is the package `gancli.weights` (pyproject maps it from the top-level weights/);
in a source checkout it is the repository's weights/ folder.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


class ShippedModelError(ValueError):
    pass


@dataclass(frozen=True)
class ShippedModel:
    name: str
    file: str
    task: str
    scale: int
    sha256: str
    description: str
    default: bool = False  # the model --scale picks (x4 when no --scale is given)
    denoise_partner: str | None = None  # the model --denoise blends with (same architecture, keeps noise)
    # training images per class, for `gancli sample --label-mix data` where the file predates recording them
    class_counts: list[int] | None = None

    @property
    def path(self) -> Path:
        return weights_dir() / self.file


def weights_dir() -> Path:
    try:
        from importlib.resources import files

        d = Path(str(files("gancli.weights")))
        if (d / "manifest.json").exists():
            return d
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "weights"


@lru_cache(maxsize=1)
def shipped_models() -> tuple[ShippedModel, ...]:
    manifest = weights_dir() / "manifest.json"
    if not manifest.exists():
        return ()
    try:
        entries = json.loads(manifest.read_text())["models"]
        return tuple(ShippedModel(**e) for e in entries)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError, KeyError, TypeError) as e:
        raise ShippedModelError(f"{manifest} is damaged ({type(e).__name__}: {e}); reinstall gancli") from None


def find(name: str | None, task: str, scale: int | None = None) -> ShippedModel:
    """The shipped model called `name`, or the default model for (task, scale) when name is None."""
    models = [m for m in shipped_models() if m.task == task]
    if name is not None:
        for m in models:
            if m.name == name:
                if scale is not None and m.scale != scale:
                    raise ShippedModelError(f"model {name!r} upscales x{m.scale}, not x{scale}")
                return m
        known = ", ".join(m.name for m in models) or "none"
        raise ShippedModelError(f"no shipped {task} model called {name!r} (shipped: {known}; see `gancli models`)")
    if scale is None and any(m.scale == 4 for m in models):
        scale = 4  # x4 is what `gancli upscale` does unless told otherwise
    if scale is not None:
        models = [m for m in models if m.scale == scale]
        if not models:
            scales = sorted({m.scale for m in shipped_models() if m.task == task})
            raise ShippedModelError(f"no shipped {task} model for x{scale} (shipped scales: {scales or 'none'})")
    if not models:
        raise ShippedModelError(f"no shipped {task} model; pass --weights FILE")
    defaults = [m for m in models if m.default]
    return (defaults or models)[0]


def verify(model: ShippedModel) -> Path:
    """The model's path, after checking that the file exists and matches the manifest's sha256."""
    path = model.path
    if not path.exists():
        raise ShippedModelError(f"shipped weights {path} are missing; reinstall gancli")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != model.sha256:
        raise ShippedModelError(f"shipped weights {path} are damaged (sha256 {digest[:12]}..., expected "
                                f"{model.sha256[:12]}...); reinstall gancli")
    return path
