"""Add or update a shipped model in weights/manifest.json (name, file, task, scale, sha256, description, and for a
class-conditional sample model its training images per class).

    gancli export runs/x4_compact -o weights/compact-x4.safetensors --name compact-x4 --description "..."
    python bench/ship_weights.py weights/compact-x4.safetensors --default

Reads task, scale, name and description from the model file's own metadata, so the manifest cannot disagree with
the file. Prints the sha256 and the provenance for weights/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gancli.checkpoints import read_model_info  # noqa: E402
from gancli.tasks.sample import parse_class_counts  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", type=Path)
    ap.add_argument("--default", action="store_true", help="make it the default for its task and scale")
    ap.add_argument("--denoise-partner", metavar="NAME", help="the shipped model `upscale --denoise` blends with")
    ap.add_argument("--class-counts", metavar="N,N,...", help="training images per class, for `gancli sample "
                    "--label-mix data`, where the file does not record them (it does since session 29)")
    args = ap.parse_args()
    path = args.file.resolve()
    if path.parent != (ROOT / "weights").resolve():
        sys.exit(f"{path} is not in {ROOT / 'weights'}")
    info = read_model_info(path)
    entry = {"name": info.name or path.stem, "file": path.name, "task": info.task, "scale": info.scale,
             "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "description": info.description,
             "default": args.default}
    if args.denoise_partner:
        entry["denoise_partner"] = args.denoise_partner
    counts = info.provenance.get("class_counts")
    if args.class_counts:
        try:
            counts = parse_class_counts(args.class_counts, len(info.provenance.get("classes") or []))
        except ValueError as e:
            sys.exit(f"{path.name}: {e}")
    if counts:
        entry["class_counts"] = counts
    manifest_path = ROOT / "weights" / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"models": []}
    models = [m for m in manifest["models"] if m["name"] != entry["name"]]
    if args.default:
        for m in models:
            if m["task"] == entry["task"] and m["scale"] == entry["scale"]:
                m["default"] = False
    models.append(entry)
    manifest["models"] = sorted(models, key=lambda m: (m["task"], m["scale"], m["name"]))
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(entry, indent=2))
    print(json.dumps(info.provenance, indent=2))


if __name__ == "__main__":
    main()
