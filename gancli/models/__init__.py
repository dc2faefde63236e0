"""The explicit registry of network architectures: name -> (config dataclass, module class).

A checkpoint names its architecture and carries its config, so `build(name, config)` is all a loader needs.
Add a family by writing its file in this package and one line below.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from gancli.models.compact import CompactSR, CompactSRConfig
from gancli.models.discriminator import PatchDiscriminator, PatchDiscriminatorConfig
from gancli.models.gan import GANDiscriminator, GANDiscriminatorConfig, GANGenerator, GANGeneratorConfig
from gancli.models.inpaint import InpaintNet, InpaintNetConfig

ARCHITECTURES: dict[str, tuple[type, type[nn.Module]]] = {
    "compact_sr": (CompactSRConfig, CompactSR),
    "patch_disc": (PatchDiscriminatorConfig, PatchDiscriminator),
    "inpaint_ffc": (InpaintNetConfig, InpaintNet),
    "gan_gen": (GANGeneratorConfig, GANGenerator),
    "gan_disc": (GANDiscriminatorConfig, GANDiscriminator),
}


class UnknownArchitectureError(ValueError):
    pass


def make_config(arch: str, config: dict[str, Any] | None = None):
    """Build the config dataclass of `arch` from a plain dict; unknown names or keys are errors."""
    if arch not in ARCHITECTURES:
        known = ", ".join(sorted(ARCHITECTURES))
        raise UnknownArchitectureError(f"unknown architecture {arch!r} (known: {known})")
    config_cls, _ = ARCHITECTURES[arch]
    fields = {f.name for f in dataclasses.fields(config_cls)}
    config = dict(config or {})
    extra = sorted(set(config) - fields)
    if extra:
        raise UnknownArchitectureError(f"architecture {arch!r} has no config field(s) {', '.join(extra)}")
    return config_cls(**config)


def build(arch: str, config: dict[str, Any] | None = None) -> nn.Module:
    """Instantiate architecture `arch` with the given config dict, e.g. build("compact_sr", {"scale": 4})."""
    cfg = make_config(arch, config)
    return ARCHITECTURES[arch][1](cfg)


def config_dict(model: nn.Module) -> dict[str, Any]:
    return dataclasses.asdict(model.config)


def arch_name(model: nn.Module) -> str:
    for name, (_, cls) in ARCHITECTURES.items():
        if type(model) is cls:
            return name
    raise UnknownArchitectureError(f"{type(model).__name__} is not in the registry")
