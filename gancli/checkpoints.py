"""Model files and training states in safetensors, with JSON metadata. Never pickle.

A *model file* holds one network's weights and says what it is, so it loads with no other flag:

    metadata = {"format": "gancli-model/1", "arch": "compact_sr", "config": "{...json...}", "task": "upscale",
                "scale": "4", "name": ..., "description": ..., "gancli_version": ..., "provenance": "{...json...}"}

A *training state* holds any nested structure of dicts, lists, tuples, numbers, strings and tensors (model and
optimizer state dicts, RNG states, counters): tensors are stored as tensors, everything else as a JSON skeleton in
the metadata. Both are written atomically.
"""

from __future__ import annotations

import json
import os
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from torch.overrides import TorchFunctionMode

from gancli import __version__
from gancli.atomic import atomic_path

MODEL_FORMAT = "gancli-model/1"
STATE_FORMAT = "gancli-state/1"
MAX_HEADER_BYTES = 64 * 1024 * 1024  # a real header is kilobytes; refuse absurd lengths before reading them


class CheckpointError(ValueError):
    """A weights or state file that cannot be used; the message says why and names the file."""


@dataclass
class ModelInfo:
    arch: str
    config: dict[str, Any]
    task: str
    scale: int
    name: str = ""
    description: str = ""
    gancli_version: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)


def _check_header(path: Path) -> dict[str, Any]:
    """Read and validate the safetensors header by hand, so that hostile files fail with a clear message."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"{path}: not a safetensors file (only {size} bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES or n + 8 > size:
                raise CheckpointError(
                    f"{path}: not a safetensors file (header length {n} does not fit a {size}-byte file;"
                    " a pickle/.pt/.pth file? gancli never loads pickles)"
                )
            raw = f.read(n)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"{path}: not a safetensors file (header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file (header is not a JSON object)")
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        try:
            end = max(end, int(entry["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            raise CheckpointError(f"{path}: corrupt safetensors header (entry {key!r})") from None
    if end + n + 8 > size:
        raise CheckpointError(f"{path}: truncated file (needs {end + n + 8} bytes, has {size})")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: corrupt safetensors metadata")
    return meta


def _read_tensors(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    meta = _check_header(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise CheckpointError(f"{path}: cannot read tensors: {e}") from None
    return meta, tensors


def _json_field(path: Path, meta: dict[str, str], key: str) -> Any:
    try:
        return json.loads(meta[key])
    except KeyError:
        raise CheckpointError(f"{path}: metadata has no {key!r}; not a gancli model file") from None
    except (TypeError, json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"{path}: metadata {key!r} is not valid JSON") from None


# ---------------------------------------------------------------------------------------------------- model files


def save_model(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    task: str,
    name: str = "",
    description: str = "",
    provenance: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Write `model` (a registered architecture; unwrapped from torch.compile/DDP) as a self-describing model file.

    dtype=torch.float16 halves the file; loading casts back to the model's dtype.
    """
    from gancli.models import arch_name, config_dict

    model = getattr(model, "_orig_mod", model)  # torch.compile
    model = getattr(model, "module", model)  # DDP
    config = config_dict(model)
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().to("cpu")
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous().clone()
    meta = {
        "format": MODEL_FORMAT,
        "arch": arch_name(model),
        "config": json.dumps(config),
        "task": task,
        "scale": str(config.get("scale", 1)),
        "name": name,
        "description": description,
        "gancli_version": __version__,
        "provenance": json.dumps(provenance or {}),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def read_model_info(path: str | os.PathLike) -> ModelInfo:
    """The metadata of a model file, without loading its tensors."""
    path = Path(path)
    return _model_info(path, _check_header(path))


def _model_info(path: Path, meta: dict[str, str]) -> ModelInfo:
    if meta.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{path}: not a gancli model file (metadata format {meta.get('format')!r})")
    config = _json_field(path, meta, "config")
    provenance = _json_field(path, meta, "provenance")
    if not isinstance(config, dict) or not isinstance(provenance, dict):
        raise CheckpointError(f"{path}: metadata 'config' and 'provenance' must be JSON objects")
    try:
        scale = int(meta.get("scale", "1"))
    except ValueError:
        raise CheckpointError(f"{path}: metadata 'scale' is not an integer") from None
    return ModelInfo(
        arch=meta.get("arch", ""),
        config=config,
        task=meta.get("task", ""),
        scale=scale,
        name=meta.get("name", ""),
        description=meta.get("description", ""),
        gancli_version=meta.get("gancli_version", ""),
        provenance=provenance,
    )


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> tuple[nn.Module, ModelInfo]:
    """Build the architecture a model file names and load its weights strictly. Returns (model in eval mode, info).

    The metadata is not trusted: the architecture is first built on the meta device (no memory), stopped if it
    registers far more tensors than the file holds, and compared with the file's tensors; only a model whose every
    tensor the file provides is then built for real. So a config that asks for huge or endless layers is a clear
    error, never gigabytes or a hang.
    """
    from gancli.models import build

    path = Path(path)
    meta, tensors = _read_tensors(path)
    info = _model_info(path, meta)
    skeleton = _build_on_meta(path, info, len(tensors))
    _check_state(skeleton.state_dict(), tensors, str(path))
    model = build(info.arch, info.config)
    load_state_strict(model, tensors, source=str(path))
    model.eval().requires_grad_(False)
    return model.to(device), info


class _SkipInitOnMeta(TorchFunctionMode):
    """Skip shape-keeping initialisation on meta tensors: there is nothing to fill, and some (normal_) would
    otherwise run PyTorch's Python reference kernels, which import torch._dynamo (seconds). (Spectral norm's power
    iterations still do: loading a discriminator file costs that import, once; generators do not.)"""

    SKIP = frozenset({"normal_", "uniform_", "trunc_normal_", "kaiming_normal_", "kaiming_uniform_", "xavier_normal_",
                      "xavier_uniform_", "orthogonal_", "constant_", "zeros_", "ones_", "zero_", "fill_", "copy_",
                      "mul_", "add_", "sub_", "div_", "clamp_"})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if (getattr(func, "__name__", "") in self.SKIP and args and isinstance(args[0], torch.Tensor)
                and args[0].is_meta):
            return args[0]
        return func(*args, **(kwargs or {}))


def _build_on_meta(path: Path, info: ModelInfo, n_tensors: int) -> nn.Module:
    from gancli.models import UnknownArchitectureError, build

    limit = 2 * n_tensors + 16  # (module, name) pairs may exceed the final state dict a little (e.g. spectral norm)
    registered: set[tuple[int, str]] = set()

    def count(module: nn.Module, name: str, value) -> None:  # noqa: ARG001
        registered.add((id(module), name))  # a name assigned again (spectral norm's power iterations) counts once
        if len(registered) > limit:
            raise CheckpointError(f"{path}: its config builds far more tensors than the file's {n_tensors}")

    hooks = [nn.modules.module.register_module_parameter_registration_hook(count),
             nn.modules.module.register_module_buffer_registration_hook(count)]
    try:
        with torch.device("meta"), _SkipInitOnMeta(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Initializing zero-element tensors is a no-op"
            return build(info.arch, info.config)
    except CheckpointError:
        raise
    except UnknownArchitectureError as e:
        raise CheckpointError(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - a config can make a constructor fail in any way
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: cannot build {info.arch!r} from its config: {first}") from None
    finally:
        for hook in hooks:
            hook.remove()


def load_state_strict(model: nn.Module, tensors: dict[str, torch.Tensor], source: str = "checkpoint",
                      allow_reshaped: bool = False) -> list[str]:
    """load_state_dict that first lists every missing, unexpected and mis-shaped key in one readable error.

    With allow_reshaped, tensors whose shape differs keep the model's own (fresh) values and their names are returned
    (transfer learning, e.g. an x4 model's body into an x2 model); names must still match exactly.
    """
    expected = model.state_dict()
    if allow_reshaped:
        missing, unexpected, reshaped = _differences(expected, tensors)
        if not (missing or unexpected):
            if len(reshaped) == len(expected):
                raise CheckpointError(f"{source}: no tensor has the shape the model needs; nothing to transfer")
            model.load_state_dict({k: (expected[k] if k in reshaped else v) for k, v in tensors.items()},
                                  strict=True)
            return reshaped
    _check_state(expected, tensors, source)
    model.load_state_dict(tensors, strict=True)
    return []


def _differences(expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor]
                 ) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, reshaped) key names of `tensors` against the state dict `expected`."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(tensors) if tensors[k].shape != expected[k].shape)
    return missing, unexpected, reshaped


def _check_state(expected: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], source: str) -> None:
    """Raise one readable CheckpointError listing every missing, unexpected and mis-shaped key, if any."""
    missing, unexpected, reshaped = _differences(expected, tensors)
    shapes = [f"{k}: file {tuple(tensors[k].shape)} vs model {tuple(expected[k].shape)}" for k in reshaped]
    if missing or unexpected or shapes:
        lines = [f"{source}: weights do not match the architecture"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if items:
                more = f" (+{len(items) - 8} more)" if len(items) > 8 else ""
                lines.append(f"  {title}: {', '.join(items[:8])}{more}")
        raise CheckpointError("\n".join(lines))


def blend_models(model: nn.Module, other: nn.Module, t: float) -> None:
    """model <- t * model + (1 - t) * other, parameter by parameter (ESRGAN's network interpolation): both must be
    the same architecture with the same config, ideally fine-tuned from a common ancestor."""
    a, b = model.state_dict(), other.state_dict()
    if type(model) is not type(other) or a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise CheckpointError("cannot blend two models of different architectures")
    model.load_state_dict({k: torch.lerp(b[k].to(a[k]), a[k], t) if a[k].is_floating_point() else a[k] for k in a})


# ------------------------------------------------------------------------------------------------ training states


def _flatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(obj.copy())
        return {"__ndarray__": key}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {"__dict__": [[_flatten(k, tensors), _flatten(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_flatten(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_flatten(v, tensors) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a training state")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return tensors[obj["__ndarray__"]].numpy()
        if "__tuple__" in obj:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in obj["__dict__"]}
        raise CheckpointError("corrupt training state skeleton")
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_state(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Atomically write a nested training state (see module docstring)."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, tensors)
    meta = {"format": STATE_FORMAT, "gancli_version": __version__, "skeleton": json.dumps(skeleton)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    meta, tensors = _read_tensors(path)
    if meta.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not a gancli training state (format {meta.get('format')!r})")
    try:
        return _unflatten(_json_field(path, meta, "skeleton"), tensors)
    except KeyError as e:
        raise CheckpointError(f"{path}: training state refers to a missing tensor {e}") from None
