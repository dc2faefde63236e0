import pytest
import torch

from gancli import devices


def test_auto_and_cpu():
    assert devices.pick_device("cpu") == torch.device("cpu")
    assert devices.pick_device("auto").type in ("cpu", "cuda", "mps")
    assert devices.pick_dtype(torch.device("cpu")) == torch.float32


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_explicit_missing_device_is_an_error():
    with pytest.raises(devices.DeviceError, match="CUDA is not available"):
        devices.pick_device("cuda")


def test_unknown_device_and_precision():
    with pytest.raises(devices.DeviceError):
        devices.pick_device("tpu")
    with pytest.raises(devices.DeviceError):
        devices.pick_dtype(torch.device("cpu"), "fp8")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_upscale_matches_cpu():
    import numpy as np

    from gancli.imageio import Picture
    from gancli.tasks.upscale import upscale_picture
    from tests.conftest import gradient_rgb, tiny_sr

    model = tiny_sr()
    pic = Picture(gradient_rgb(64, 64))
    cpu = upscale_picture(model, pic, 4, device=torch.device("cpu"))
    dev = torch.device("cuda")
    gpu = upscale_picture(model.to(dev), pic, 4, device=dev, dtype=torch.float32, tile=32)
    assert np.abs(cpu.pixels.astype(int) - gpu.pixels.astype(int)).max() <= 1
    half = upscale_picture(model.to(dev, torch.float16), pic, 4, device=dev, dtype=torch.float16)
    assert np.abs(cpu.pixels.astype(int) - half.pixels.astype(int)).mean() < 1.0
