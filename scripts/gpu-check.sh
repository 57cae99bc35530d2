#!/usr/bin/env bash
# The CUDA checks of issues 12 and 23, as one run on an NVIDIA machine (H100/H200 class, CUDA 13 libraries as pip
# nvidia-* packages of its Python environment). Writes every result as JSON lines to $OUT/gpu-check.jsonl
# (plus the full logs beside it) and prints a summary; exits non-zero when a step fails.
#
#   bash scripts/gpu-check.sh [--tarball FILE] [--ep cuda] [--gpu N] [--fp32] [--steps 100] [--size 512] [--quick]
#
#   --tarball FILE  the provider tarball (`npm pack com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9`), for a
#                   machine that cannot reach the npm registry; without it install:cuda fetches it with npm
#   --ep cpu        run the same steps on CPU (to check the script itself on a machine without a GPU)
#   --quick         the demo model at 64 px and 4 steps instead of the sd15 preset at --size/--steps
#   --fp32          the sd15 preset exported in float32 (default float16); on CUDA the studio converts it to
#                   fp16 at load (issue 23), so this benches the load-time conversion
# Issue 23's checks: conformance on the tiny fixture in fp32 (graph optimizer on: MultiHeadAttention, and
# on CUDA GroupNorm NHWC, BiasSplitGelu, BiasAdd), in fp16 (converted at load, the fp16 tolerances of
# server/conformance/tolerance.ts) and unfused (DUALSTYLE_OPTIMIZE=off); the bench fused and unfused (the
# second with DUALSTYLE_OPTIMIZE=off), each printing optimized ÷ plain. Where doctor finds TensorRT ready,
# conformance and the bench with --ep tensorrt too (engines cached in .cache/tensorrt-engines).
# Environment: OUT (default ./gpu-check-out), MODEL_DIR (default $OUT/sd15-random[-fp32]: reused when present),
# FIXTURE (default ../shared/fixtures/tiny-sd, then shared/fixtures/tiny-sd).
set -uo pipefail
cd "$(dirname "$0")/.."

EP=cuda GPU=0 TARBALL="" PRECISION=fp16 STEPS=100 SIZE=512 QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tarball) TARBALL="$2"; shift ;;
    --ep) EP="$2"; shift ;;
    --gpu) GPU="$2"; shift ;;
    --fp32) PRECISION=fp32 ;;
    --steps) STEPS="$2"; shift ;;
    --size) SIZE="$2"; shift ;;
    --quick) QUICK=1 ;;
    *) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
OUT="${OUT:-gpu-check-out}"
mkdir -p "$OUT"
JSONL="$OUT/gpu-check.jsonl"
: > "$JSONL"
FAILED=0
log() { echo "[gpu-check $(date +%H:%M:%S)] $*"; }
# emit STEP STATUS SECONDS [DETAIL]: one JSON line per step.
emit() {
  node -e 'const [step, status, s, detail] = process.argv.slice(1); console.log(JSON.stringify({ check: "gpu-check", step, status, seconds: Number(s), detail: detail || undefined, at: new Date().toISOString() }))' \
    "$1" "$2" "$3" "${4:-}" >> "$JSONL"
}
# step NAME COMMAND...: runs it with its output in $OUT/NAME.log, records status and time.
step() {
  local name="$1"; shift
  local t0=$SECONDS
  log "$name: $*"
  if "$@" > "$OUT/$name.log" 2>&1; then
    emit "$name" ok $((SECONDS - t0)); log "$name: ok ($((SECONDS - t0)) s)"; return 0
  else
    local rc=$?
    emit "$name" "failed (exit $rc)" $((SECONDS - t0)) "$(tail -n 3 "$OUT/$name.log" | tr '\n' ' ' | cut -c1-400)"
    log "$name: FAILED (exit $rc), last lines:"; tail -n 5 "$OUT/$name.log"; FAILED=1; return $rc
  fi
}

# 1. The machine.
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader > "$OUT/nvidia-smi.txt" 2>&1
  nvidia-smi > "$OUT/nvidia-smi-full.txt" 2>&1
  emit machine ok 0 "$(head -n 1 "$OUT/nvidia-smi.txt"); $(grep -o 'CUDA Version: [0-9.]*' "$OUT/nvidia-smi-full.txt" | head -n 1)"
else
  emit machine "no nvidia-smi" 0 "$(uname -m), $(nproc) cores"
fi

# 2. Dependencies: node_modules must be there already (a machine without the registry cannot npm ci).
if [ ! -d node_modules/onnxruntime-node ]; then
  step npm-ci npm ci --no-audit --no-fund || { log "no node_modules and npm ci failed: nothing else can run"; exit 1; }
fi

# 3. The CUDA provider (from the carried tarball, or fetched with npm); not needed to check the script on CPU.
if [ "$EP" = cpu ]; then emit install-cuda skipped 0 "--ep cpu"
elif [ -n "$TARBALL" ]; then step install-cuda node scripts/ort-cuda.mjs --install --tarball "$TARBALL"
else step install-cuda node scripts/ort-cuda.mjs --install; fi

# 4. CUDA libraries of the Python environment (pip nvidia-* wheels) on the loader's path, as doctor advises.
PYLIBS="$(python3 - << 'EOF' 2> /dev/null
import glob, os, site
dirs = []
for sp in site.getsitepackages() + [site.getusersitepackages()]:
    for d in sorted(glob.glob(os.path.join(sp, 'nvidia', '*', 'lib'))) + sorted(glob.glob(os.path.join(sp, 'tensorrt_libs'))):
        if any('.so' in f for f in os.listdir(d)): dirs.append(d)
print(':'.join(dirs))
EOF
)"
if [ -n "$PYLIBS" ]; then export LD_LIBRARY_PATH="$PYLIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
emit python-cuda-libs ok 0 "${PYLIBS:-none found}"

# 5. The diagnosis (exit 1 = CUDA not ready: recorded, the later steps then show how it fails).
step doctor node_modules/.bin/tsx server/cli/doctor.ts
node_modules/.bin/tsx server/cli/doctor.ts --json > "$OUT/doctor.json" 2> /dev/null
# TensorRT (optional): its steps run where doctor finds it ready.
TRT_READY="$(node -e 'try { const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(d.tensorrt && d.tensorrt.ready ? 1 : 0) } catch { console.log(0) }' "$OUT/doctor.json")"
emit tensorrt "$([ "$TRT_READY" = 1 ] && echo ready || echo 'not ready')" 0 "$(grep -h '^TensorRT' "$OUT/doctor.log" | cut -c1-400)"

# 6. Conformance on the tiny fixture, on the chosen provider.
FIXTURE="${FIXTURE:-}"
for f in ../shared/fixtures/tiny-sd shared/fixtures/tiny-sd; do [ -z "$FIXTURE" ] && [ -d "$f" ] && FIXTURE="$f"; done
# fp32 with the optimizer's fusions for the provider, fp16 converted at load, and the graph as exported.
if [ -n "$FIXTURE" ]; then
  step conformance node_modules/.bin/tsx server/cli/conformance.ts "$FIXTURE" --ep "$EP" --gpu "$GPU" --fp32
  step conformance-fp16 node_modules/.bin/tsx server/cli/conformance.ts "$FIXTURE" --ep "$EP" --gpu "$GPU" --fp16
  step conformance-unfused env DUALSTYLE_OPTIMIZE=off node_modules/.bin/tsx server/cli/conformance.ts "$FIXTURE" --ep "$EP" --gpu "$GPU" --fp32
  # A fixture converted from diffusers weights (the model-format work), when present beside it.
  for f in "${FIXTURE_CONVERTED:-}" "$(dirname "$FIXTURE")/tiny-sd-converted"; do
    if [ -n "$f" ] && [ -f "$f/reference/manifest.json" ]; then
      step conformance-converted node_modules/.bin/tsx server/cli/conformance.ts "$f" --ep "$EP" --gpu "$GPU" --fp32; break
    fi
  done
  if [ "$TRT_READY" = 1 ] && [ "$EP" != cpu ]; then
    step conformance-tensorrt node_modules/.bin/tsx server/cli/conformance.ts "$FIXTURE" --ep tensorrt --gpu "$GPU" --fp32
  fi
else emit conformance skipped 0 "no tiny-sd fixture (set FIXTURE)"; fi

# 7. The model to bench: the sd15 preset (generated once, reused), or the demo with --quick.
if [ "$QUICK" = 1 ]; then
  MODEL=demo BENCH_ARGS=(--size 64 --steps 4 --skip 0 --reps 1 --unet-reps 1)
else
  MODEL="${MODEL_DIR:-$OUT/sd15-random$([ "$PRECISION" = fp32 ] && echo -fp32)}"
  if [ ! -f "$MODEL/unet/model.onnx" ]; then
    rm -rf "$MODEL"
    step demo-model node_modules/.bin/tsx server/cli/demo-model.ts --preset sd15 --dtype "$([ "$PRECISION" = fp16 ] && echo float16 || echo float32)" --out "$MODEL"
  fi
  BENCH_ARGS=(--size "$SIZE" --steps "$STEPS" --reps 1)
fi

# 8. The bench, fused (the optimizer's graph) then unfused (as exported): every figure as a JSON line into the same
# file. The fused run also times both loaded fresh at batch 2 (optimized ÷ plain).
step bench node_modules/.bin/tsx server/cli/bench.ts --model "$MODEL" --ep "$EP" --gpu "$GPU" "${BENCH_ARGS[@]}" --jsonl "$JSONL"
step bench-unfused env DUALSTYLE_OPTIMIZE=off node_modules/.bin/tsx server/cli/bench.ts --model "$MODEL" --ep "$EP" --gpu "$GPU" "${BENCH_ARGS[@]}" --no-optimizer-timing --no-session-timing --jsonl "$JSONL"

if [ "$TRT_READY" = 1 ] && [ "$EP" != cpu ]; then
  step bench-tensorrt node_modules/.bin/tsx server/cli/bench.ts --model "$MODEL" --ep tensorrt --gpu "$GPU" "${BENCH_ARGS[@]}" --no-optimizer-timing --jsonl "$JSONL"
fi

log "results: $JSONL ($(wc -l < "$JSONL") lines); logs in $OUT/"
grep -h -E '^(CUDA:|TensorRT|  (PASS|FAIL|N/A) |graph optimizer|OK:|FAILED:)' "$OUT/doctor.log" "$OUT"/conformance*.log "$OUT"/bench*.log 2> /dev/null
exit $FAILED
