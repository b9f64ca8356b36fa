#!/usr/bin/env bash
# One call on a GPU machine, bare but for torch and pytest (no Ray or DuckDB needed): the
# CUDA tests of the loader, the proxies and the swarm, then benchmarks/swarm.py on the GPU.
# Everything lands under $OUT (or ./gpu_out); the benchmark's JSON is rewritten after each
# preset, so a time limit keeps what was measured. Extra arguments go to the benchmark:
#
#     bash benchmarks/gpu_check.sh --presets 1m,20m --compiled 1m:16:inductor,20m:16:inductor
set -uo pipefail
out=${OUT:-gpu_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda)" | tee -a "$out/gpu.txt"
# modules that import Ray or DuckDB fail to collect on a bare image: the rest still run
timeout "${TEST_TIMEOUT_S:-240}" python3 -m pytest -q -p no:cacheprovider --continue-on-collection-errors \
    -k "cuda or CUDA" tests/proxies tests/mixer 2>&1 | tail -25 | tee "$out/tests.log"
timeout "${BENCH_TIMEOUT_S:-420}" python3 benchmarks/swarm.py --device cuda --repeats 2 \
    --json "$out/swarm_gpu.json" "$@" 2>&1 | tee "$out/swarm.log"
