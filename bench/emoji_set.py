"""The emoji training folder for the shipped emoji sample model: Twemoji 64x64 RGBA from ../shared/data/emoji.

    python bench/emoji_set.py                       # -> runs/emoji_data/{smileys,animals}/*.png
    python bench/emoji_set.py --categories "Smileys & Emotion" "Animals & Nature" "Food & Drink"

Each chosen `category` of emoji.json becomes one sub-folder, so `gancli train --task sample` trains a
class-conditional model (`gancli sample --label smileys`). The files are copied unchanged (they are small; a copy
keeps the run independent of where the shared data lives). The folder is git-ignored (runs/): the artwork is
Twemoji by Twitter, Inc., CC-BY 4.0, credited in weights/README.md; it is not committed to this project.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EMOJI = ROOT.parent / "shared" / "data" / "emoji"
SHORT = {"Smileys & Emotion": "smileys", "Animals & Nature": "animals", "Food & Drink": "food"}


def folder_name(category: str) -> str:
    return SHORT.get(category) or category.lower().replace(" & ", "-").replace(" ", "-")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emoji", type=Path, default=EMOJI, help="folder with emoji.json and twemoji-64/")
    ap.add_argument("--categories", nargs="+", default=["Smileys & Emotion", "Animals & Nature"])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "emoji_data")
    args = ap.parse_args()
    entries = json.loads((args.emoji / "emoji.json").read_text())
    known = sorted({e["category"] for e in entries})
    for c in args.categories:
        if c not in known:
            sys.exit(f"error: no category {c!r} in emoji.json (known: {', '.join(known)})")
    for c in args.categories:
        dest = args.out / folder_name(c)
        dest.mkdir(parents=True, exist_ok=True)
        files = sorted(e["image"] for e in entries if e["category"] == c)
        missing = [f for f in files if not (args.emoji / "twemoji-64" / f).is_file()]
        for f in files:
            if f not in missing:
                shutil.copyfile(args.emoji / "twemoji-64" / f, dest / f)
        print(f"{dest}: {len(files) - len(missing)} images" + (f" ({len(missing)} missing)" if missing else ""))


if __name__ == "__main__":
    main()
