"""gancli: GAN image editing from the command line (upscale, inpaint, train, sample)."""

__version__ = "0.1.0"
