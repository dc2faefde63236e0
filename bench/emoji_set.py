"""The emoji training folder for the shipped emoji sample model: Twemoji 64x64 RGBA from ../shared/data/emoji.

    python bench/emoji_set.py                       # -> runs/emoji_data/{smileys,animals}/*.png
    python bench/emoji_set.py --categories "Smileys & Emotion" "Animals & Nature" "Food & Drink"
    python bench/emoji_set.py --groups fine --out runs/emoji_fine   # the same 328 images in 9 classes
    python bench/emoji_set.py --groups pretrain --out runs/emoji_pre  # 1,412 images in the same two classes
    python bench/emoji_set.py --categories "Smileys & Emotion" "Flags" --groups layout --out runs/emoji_sfl
    python bench/emoji_set.py --categories "Smileys & Emotion" "Flags" --groups layout --split Flags \
        --out runs/emoji_sff

Each chosen `category` of emoji.json becomes one sub-folder, so `gancli train --task sample` trains a
class-conditional model (`gancli sample --label smileys`). `--groups fine` instead splits the two default
categories into nine classes of 29-48 images along emoji.json's `subcategory` (and "FACE" in a mammal's name):
narrower classes give the generator and the projection discriminator one kind of picture to agree on per label.
`--groups pretrain` widens the two default classes with five more categories of the same artwork for a run to
start from (issue 6, session 21): "smileys" also takes "People & Body" (faces, hands, people) and "animals" also takes
"Food & Drink", "Travel & Places", "Activities" and "Objects" (things drawn in the same flat style); a fine-tuning run
on the 328 images then starts with the same two labels. "Flags", "Symbols" and "Component" stay out (mostly
rectangles, keycaps and skin-tone swatches).
`--groups layout` splits each chosen category by colour layout instead of by name: k-means (k-means++ seeded, 50
iterations, seed 0) on the 8x8 thumbnails over white, k = round(images / --per-class), classes `flags-1`, `flags-2`,
... largest first. Flags come in layout families (horizontal and vertical tricolours, a red field with an emblem, a blue
ensign), and one label per family gives the generator one layout to draw per label; with classes of near-equal
size, the class-in-turn sampling of `gancli sample` and the benchmarks also draws each category about as often as the
data holds it (the two-class layout draws half flags where the data has 62 %). `--split` names the categories to
split (the others stay one class each: session 28's small smiley families of 30-44 images came out as blobs).
The files are copied unchanged (they are small; a copy keeps the run independent of where the shared data lives).
The folder is git-ignored (runs/): the artwork is Twemoji by Twitter, Inc., CC-BY 4.0, credited in
weights/README.md; it is not committed to this project.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EMOJI = ROOT.parent / "shared" / "data" / "emoji"
SHORT = {"Smileys & Emotion": "smileys", "Animals & Nature": "animals", "Food & Drink": "food"}


# --groups pretrain: class folder <- the categories it takes (the default classes first)
PRETRAIN = {
    "animals": ["Animals & Nature", "Food & Drink", "Travel & Places", "Activities", "Objects"],
    "smileys": ["Smileys & Emotion", "People & Body"],
}


# --groups fine: class folder <- the subcategories of "Smileys & Emotion" and "Animals & Nature" it takes
FINE = {
    "smileys-happy": ["face-smiling", "face-affection", "face-tongue", "face-hand", "face-glasses", "face-hat"],
    "smileys-unwell": ["face-concerned", "face-unwell", "face-sleepy"],
    "smileys-other": ["face-neutral-skeptical", "face-negative", "face-costume"],
    "hearts": ["heart", "emotion"],
    "animal-faces": ["cat-face", "monkey-face"],  # and every animal-mammal whose name has "FACE"
    "mammals": ["animal-mammal"],
    "birds-reptiles": ["animal-bird", "animal-reptile", "animal-amphibian"],
    "sea-bugs": ["animal-marine", "animal-bug"],
    "plants": ["plant-flower", "plant-other"],
}


def fine_group(entry: dict) -> str | None:
    sub = entry["subcategory"]
    if sub == "animal-mammal" and "FACE" in entry["name"]:
        return "animal-faces"
    return next((g for g, subs in FINE.items() if sub in subs), None)


def layout_groups(emoji: Path, name: str, files: list[str], per_class: int, seed: int = 0) -> dict[str, list[str]]:
    """Split one category's files into k-means clusters of their 8x8 thumbnails (RGB over white), largest first."""
    k = max(1, round(len(files) / per_class))
    if k == 1:
        return {name: files}
    feats = []
    for f in files:
        with Image.open(emoji / "twemoji-64" / f) as im:
            rgba = np.asarray(im.convert("RGBA").resize((8, 8), Image.Resampling.BOX), dtype=np.float32) / 255
        feats.append((rgba[..., :3] * rgba[..., 3:] + 1 - rgba[..., 3:]).ravel())
    x = np.stack(feats)
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    for _ in range(k - 1):  # k-means++: each next centre drawn in proportion to the squared distance to the nearest
        d = np.min([((x - c) ** 2).sum(1) for c in centres], axis=0)
        centres.append(x[rng.choice(len(x), p=d / d.sum())])
    c = np.stack(centres)
    for _ in range(50):
        assign = ((x[:, None] - c[None]) ** 2).sum(2).argmin(1)
        c = np.stack([x[assign == j].mean(0) if (assign == j).any() else c[j] for j in range(k)])
    order = np.argsort([-(assign == j).sum() for j in range(k)], kind="stable")
    return {f"{name}-{i + 1}": [f for f, a in zip(files, assign, strict=True) if a == j] for i, j in enumerate(order)}


def folder_name(category: str) -> str:
    return SHORT.get(category) or category.lower().replace(" & ", "-").replace(" ", "-")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emoji", type=Path, default=EMOJI, help="folder with emoji.json and twemoji-64/")
    ap.add_argument("--categories", nargs="+", default=["Smileys & Emotion", "Animals & Nature"])
    ap.add_argument("--groups", choices=["category", "fine", "pretrain", "layout"], default="category",
                    help="one class per category, the classes of FINE or PRETRAIN (ignore --categories), or each "
                         "category split by colour layout (k-means)")
    ap.add_argument("--per-class", type=int, default=55, help="--groups layout: images per class, about")
    ap.add_argument("--split", nargs="+", metavar="CATEGORY",
                    help="--groups layout: split only these of --categories (the others stay one class each)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "emoji_data")
    args = ap.parse_args()
    entries = json.loads((args.emoji / "emoji.json").read_text())
    if args.groups == "fine":
        groups = {g: sorted(e["image"] for e in entries if fine_group(e) == g) for g in FINE}
        copy_groups(args.emoji, args.out, groups)
        return
    if args.groups == "pretrain":
        groups = {g: sorted(e["image"] for e in entries if e["category"] in cats) for g, cats in PRETRAIN.items()}
        copy_groups(args.emoji, args.out, groups)
        return
    known = sorted({e["category"] for e in entries})
    for c in args.categories:
        if c not in known:
            sys.exit(f"error: no category {c!r} in emoji.json (known: {', '.join(known)})")
    split = set(args.split if args.split is not None else args.categories)
    if args.split is not None and args.groups != "layout":
        sys.exit("error: --split needs --groups layout")
    for c in split - set(args.categories):
        sys.exit(f"error: --split {c!r} is not one of --categories")
    groups = {}
    for c in args.categories:
        files = sorted(e["image"] for e in entries if e["category"] == c)
        if args.groups == "layout" and c in split:
            groups.update(layout_groups(args.emoji, folder_name(c), files, args.per_class))
        else:
            groups[folder_name(c)] = files
    copy_groups(args.emoji, args.out, groups)


def copy_groups(emoji: Path, out: Path, groups: dict[str, list[str]]) -> None:
    """Copy each group's image files into out/<group>/."""
    for name, files in groups.items():
        dest = out / name
        dest.mkdir(parents=True, exist_ok=True)
        missing = [f for f in files if not (emoji / "twemoji-64" / f).is_file()]
        for f in files:
            if f not in missing:
                shutil.copyfile(emoji / "twemoji-64" / f, dest / f)
        print(f"{dest}: {len(files) - len(missing)} images" + (f" ({len(missing)} missing)" if missing else ""))


if __name__ == "__main__":
    main()
