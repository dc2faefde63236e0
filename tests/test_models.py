"""Every registered architecture builds from a tiny config, runs forward and backward, and round-trips a file."""

import pytest
import torch

from gancli import checkpoints, models

TINY = {"compact_sr": {"scale": 2, "num_feat": 4, "num_conv": 1}, "patch_disc": {"num_feat": 4, "num_down": 2},
        "inpaint_ffc": {"base": 4, "max_channels": 8, "num_blocks": 1},
        "gan_gen": {"image_size": 16, "base": 8, "min_channels": 4, "latent_dim": 8, "num_classes": 2},
        "gan_disc": {"image_size": 16, "base": 4, "max_channels": 8, "num_classes": 2}}


def inputs(arch: str) -> tuple:
    """What each architecture's forward takes (labels for the class-conditional GAN pair)."""
    x = torch.rand(2, 3, 16, 16)
    labels = torch.tensor([0, 1])
    return {"inpaint_ffc": (x, (torch.rand(2, 1, 16, 16) > 0.5).float()), "gan_gen": (torch.randn(2, 8), labels),
            "gan_disc": (x, labels)}.get(arch, (x,))


def test_every_architecture_has_a_tiny_config():
    assert set(TINY) == set(models.ARCHITECTURES)


@pytest.mark.parametrize("arch", sorted(models.ARCHITECTURES))
def test_forward_backward_and_round_trip(arch, tmp_path):
    model = models.build(arch, TINY[arch])
    x = inputs(arch)
    y = model(*x)
    y.mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert models.arch_name(model) == arch
    path = tmp_path / f"{arch}.safetensors"
    checkpoints.save_model(model, path, task="test")
    loaded, info = checkpoints.load_model(path)
    torch.testing.assert_close(loaded(*x), model.eval()(*x))


def test_unknown_architecture_and_field():
    with pytest.raises(models.UnknownArchitectureError, match="known: compact_sr"):
        models.build("resnet9000")
    with pytest.raises(models.UnknownArchitectureError, match="no config field"):
        models.build("compact_sr", {"wings": 2})
