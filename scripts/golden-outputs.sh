#!/usr/bin/env bash
# Writes every output the refactoring of issue 20 must keep byte-identical, from one binary,
# into one folder: scripts/golden-outputs.sh BINARY OUT_DIR. Compare two such folders with
# `diff -r`. Timing fields of `kernel --json` (wall-clock measurements) are removed first.
set -euo pipefail
bin=$(realpath "$1")
out=$2
mkdir -p "$out"
out=$(realpath "$out")
cd "$(dirname "$0")/.."
"$bin" run --out "$out/run-default" > "$out/run-default.txt"
"$bin" run configs/resnet20-w4-sparse.toml --out "$out/run-resnet20" > "$out/run-resnet20.txt"
for f in configs/sweeps/*.toml; do
  name=$(basename "$f" .toml)
  "$bin" sweep plan "$f" --out "$out/sweeps/$name" > /dev/null
  "$bin" sweep run "$out/sweeps/$name" --shard 0/2 > /dev/null 2>&1
  "$bin" sweep run "$out/sweeps/$name" --shard 1/2 > /dev/null 2>&1
  "$bin" sweep merge "$out/sweeps/$name" > "$out/sweeps/$name.merge.txt"
done
"$bin" validate --markdown > "$out/validate.md"
"$bin" kernel add --bits 32 --json \
  | python3 -c 'import json,sys
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in ("exec_cpu_s", "wall_s") and not k.startswith("lane_gate_evals_per_s")}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v
print(json.dumps(strip(json.load(sys.stdin)), indent=1, sort_keys=True))' > "$out/kernel-add-32.json"
"$bin" gates --json > "$out/gates.json"
"$bin" models --json > "$out/models.json"
run=$(ls -d "$out"/run-resnet20/*/ | head -1)
"$bin" plot layers "$run" --out "$out/plots/layers.svg" > /dev/null
"$bin" plot breakdown "$run" --out "$out/plots/breakdown.svg" > /dev/null
"$bin" plot line "$out/sweeps/digits-bits-sparsity" --out "$out/plots/line.svg" > /dev/null
"$bin" plot pareto "$out/sweeps/resnet20-array-device" --out "$out/plots/pareto.svg" > /dev/null
"$bin" plot heatmap "$out/sweeps/physics-tmr-diameter" --out "$out/plots/heatmap.svg" > /dev/null
# Absolute paths of this machine in outputs would differ between two output folders.
grep -rl "$out" "$out" | while read -r f; do sed -i "s|$out|OUT|g" "$f"; done
# Shard files hold points in the order they finished (threads race) and lock files name the
# process; the merged results are ordered. Sort the shard lines and drop the lock files.
for f in "$out"/sweeps/*/shards/*.jsonl; do sort -o "$f" "$f"; done
rm -f "$out"/sweeps/*/shards/*.lock
echo "written: $out"
