"""Side-by-side inpainting crops for docs/: input with the hole | cv2 Telea | gancli | ground truth.

Fixed picks, not chosen by result: Kodak24 images number 3, 11 and 19 (0-based, sorted by name) with the mask the
quality benchmark pairs them with (bench/inpaint_quality.py: mask (4 i) % 100 of the bin) in bin 1-10 % (small
holes), 20-30 % (medium) and 50-60 % (large). Each crop is 256x256 around the centre of the hole's bounding box
(clipped to the image); the hole is shown in mid grey in the first column.

    python bench/inpaint_crops.py                     # the shipped default inpaint model -> docs/inpaint_crops/
    python bench/inpaint_crops.py --weights runs/inpaint/best.safetensors --out /tmp/crops
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, ROOT  # noqa: E402
from inpaint_quality import BINS, MASKS_PER_BIN, bin_masks, composite, load_hole, model_inpainter, telea  # noqa: E402

from gancli import devices, shipped  # noqa: E402

PICKS = ((3, 0, "small"), (11, 2, "medium"), (19, 5, "large"))  # (image index, bin index, label)
SIDE = 256
CAPTION = 18


def crop_box(hole: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(hole)
    cy, cx = (ys.min() + ys.max()) // 2, (xs.min() + xs.max()) // 2
    h, w = hole.shape
    return int(np.clip(cy - SIDE // 2, 0, h - SIDE)), int(np.clip(cx - SIDE // 2, 0, w - SIDE))


def strip(columns: list[np.ndarray], names: list[str]) -> Image.Image:
    out = Image.new("RGB", (SIDE * len(columns), SIDE + CAPTION), "white")
    draw = ImageDraw.Draw(out)
    for i, (col, name) in enumerate(zip(columns, names, strict=True)):
        out.paste(Image.fromarray(col), (i * SIDE, CAPTION))
        draw.text((i * SIDE + 4, 3), name, fill="black")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", type=Path, help="an inpaint model file (default: the shipped default model)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "inpaint_crops")
    args = ap.parse_args()
    devices.set_threads(0)
    if args.weights:
        path, name = args.weights, args.weights.name
    else:
        m = shipped.find(None, "inpaint")
        path, name = shipped.verify(m), f"gancli {m.name}"
    ours = model_inpainter(path)
    kodak = sorted((DATA / "bench" / "Kodak24").glob("*.png"))
    if len(kodak) < 24:
        sys.exit(f"Kodak24 not found under {DATA}: set GANCLI_DATA to the shared data folder")
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["# Inpainting crops", "",
             "Written by `python bench/inpaint_crops.py` (fixed picks: see its docstring). Columns: input with the "
             "hole in grey | cv2 Telea (r=3) | gancli | ground truth. Crops of 256x256 from the 500x500 images, "
             "shown at full resolution.", ""]
    for index, b, label in PICKS:
        gt = np.asarray(Image.open(kodak[index]).convert("RGB"))
        mask = bin_masks(DATA / "masks" / "irregular", b)[(index * 4) % MASKS_PER_BIN]
        hole = load_hole(mask, *gt.shape[:2])
        masked = composite(gt, hole, np.zeros_like(gt))
        shown = composite(gt, hole, np.full_like(gt, 128))
        y, x = crop_box(hole)
        cols = [a[y : y + SIDE, x : x + SIDE] for a in (shown, telea(masked, hole), ours(masked, hole), gt)]
        file = f"{label}_{kodak[index].stem}.png"
        strip(cols, ["input", "cv2 Telea", name, "ground truth"]).save(args.out / file)
        lines.append(f"- {label} hole ({BINS[b]} bin, mask {mask.name}, {100 * hole.mean():.1f} % of the image): "
                     f"`{kodak[index].stem}`\n\n  ![{label}]({file})\n")
    (args.out / "README.md").write_text("\n".join(lines))
    print(f"crops written to {args.out}")


if __name__ == "__main__":
    main()
