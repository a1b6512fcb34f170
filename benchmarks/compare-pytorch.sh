#!/usr/bin/env bash
# Side-by-side CPU timing of this project and PyTorch (Debian's python3-torch, oneDNN
# convolutions) on the same meta-iterations, interleaved (ours, PyTorch, ours, ...) at 1 and 2
# threads, with the machine's GEMM peak (OpenBLAS sgemm 1024^3 through numpy) measured in the
# same run. Workloads (benchmarks/torch_reference.py describes the PyTorch side):
#   reptile4  configs/reptile-4conv-omniglot.json   (meta-batch 5, 10 Adam steps of 20)
#   fomaml4   configs/fomaml-4conv-omniglot.json    (meta-batch 16, 5 SGD steps, 20-way 1-shot)
#   metanas   W1: meta-step-bench's built-in MetaNAS Omniglot 20w1s (C=28, 4 cells, 3 nodes)
# Per workload and thread count it prints both medians, the ratio ours / PyTorch, the GFLOP of
# one meta-iteration (counted on the PyTorch model), the GFLOP/s each reaches against the
# sgemm peak, and the FLOP floor (GFLOP / peak).
#
#   benchmarks/compare-pytorch.sh [--quick] [--build DIR] [--threads "1 2"] [--n N]
#                                 [--workloads "reptile4 fomaml4 metanas"] [--w1-meta-batch M] [--w1-n N]
#                                 [--task-parallel] [--passive]
#
# --task-parallel: our workloads run with meta.task_parallel=true (the tasks of a meta-batch
# concurrently, one per thread; the same work per iteration, each task from the same start state;
# for W1 that is MetaNAS's task-parallel semantics, docs/reproduction.md, not the sequential one).
# --passive: OMP_WAIT_POLICY=passive on both sides (for a loaded machine, where spinning threads
# steal the cores of other jobs). By default the OpenMP runtime's own policy is left alone, as a
# user runs it: passive waits cost every parallel region a futex wake (~15% of W1 on 2 cores).
#
# --quick: one timed iteration, no warm-up, meta-batch 1 everywhere (a smoke run, seconds).
# Defaults: n=3 repetitions (each 1 warm-up + 1 timed iteration) for the 4-conv workloads; W1 runs
# n=1 (1 warm-up + 1 timed iteration: a first iteration costs both sides 10-30% more, page faults,
# caches and primitive creation, which a training run pays once; --w1-n N repeats it N times,
# interleaved, for a noisy machine)
# at meta-batch --w1-meta-batch (default 2; 10 is the full W1, about 5x longer): its time is
# linear in the meta-batch, so the ratio is that of the full W1.
# Not a test. PyTorch is a benchmark dependency only: the script installs python3-torch with
# apt-get when /usr/bin/python3 cannot import torch (and skips PyTorch if it cannot).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
build="$root/build"
threads_list="1 2"
n=3
w1_mb=2
w1_n=1
quick=0
task_parallel=0
passive=0
workloads="reptile4 fomaml4 metanas"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=1 ;;
    --build) build="$2"; shift ;;
    --threads) threads_list="$2"; shift ;;
    --n) n="$2"; shift ;;
    --workloads) workloads="$2"; shift ;;
    --w1-meta-batch) w1_mb="$2"; shift ;;
    --w1-n) w1_n="$2"; shift ;;
    --task-parallel) task_parallel=1 ;;
    --passive) passive=1 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "compare-pytorch.sh: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
bench="$build/bin/meta-step-bench"
[[ -x "$bench" ]] || { echo "compare-pytorch.sh: $bench not found (build first: scripts/build.sh)" >&2; exit 1; }
py=/usr/bin/python3
have_torch=1
if ! "$py" -c "import torch" 2>/dev/null; then
  echo "compare-pytorch.sh: installing python3-torch (benchmark dependency)" >&2
  if { [[ $(id -u) -eq 0 ]] && apt-get install -y python3-torch >/dev/null; } ||
     sudo -n apt-get install -y python3-torch >/dev/null 2>&1; then :; fi
  "$py" -c "import torch" 2>/dev/null || { echo "compare-pytorch.sh: no PyTorch; only our side runs" >&2; have_torch=0; }
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
if [[ $passive -eq 1 ]]; then export OMP_WAIT_POLICY=passive; fi

# A copy of a preset with the meta-batch replaced (for --quick and the W1 meta-batch).
config_with_mb() {  # src (or "" for the built-in W1 setting) meta_batch out [task_parallel]
  "$py" - "$1" "$2" "$3" "${4:-0}" <<'EOF'
import json, sys
src, mb, out, tp = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
cfg = json.load(open(src))
cfg["meta"]["meta_batch_size"] = mb
if tp:
    cfg["meta"]["task_parallel"] = True
json.dump(cfg, open(out, "w"))
EOF
}

# The GEMM peak is measured with the OpenBLAS core the engine runs (kernels/cpu/blas_core.cpp:
# SkylakeX / Haswell where OpenBLAS's own detection falls back to SSE3 Prescott).
peak_core="${OPENBLAS_CORETYPE:-}"
if [[ -z "$peak_core" ]]; then
  if grep -qw avx512f /proc/cpuinfo; then peak_core=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then peak_core=Haswell; fi
fi
echo "# compare-pytorch: $(date -u '+%F %T UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# OpenBLAS core for the sgemm peak: ${peak_core:-detected}; PyTorch runs with its defaults (oneDNN convolutions)"
echo "# OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-(runtime default)}; ours: METANAS_CPU_CONV=${METANAS_CPU_CONV:-(default: auto)} METANAS_CPU_ISA=${METANAS_CPU_ISA:-(default)}"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| workload | threads | ours s (median) | PyTorch s (median) | ratio ours/PyTorch | GFLOP | ours GFLOP/s | PyTorch GFLOP/s | sgemm peak GFLOP/s | FLOP floor s | load |\n'
printf '|---|---|---|---|---|---|---|---|---|---|---|\n'
for t in $threads_list; do
  peak=$(env ${peak_core:+OPENBLAS_CORETYPE=$peak_core} OPENBLAS_NUM_THREADS=$t "$py" "$here/torch_reference.py" sgemm --threads "$t" --iters 10 |
         "$py" -c "import json,sys; r=json.load(sys.stdin); print('%.1f' % (r['gflop']/min(r['times_s'])))")
  for w in $workloads; do
    case "$w" in
      reptile4) src="$root/configs/reptile-4conv-omniglot.json"; mb=5; ni=$n; nw=1 ;;
      fomaml4) src="$root/configs/fomaml-4conv-omniglot.json"; mb=16; ni=$n; nw=1 ;;
      metanas) src="$root/configs/omniglot-20w1s.json"; mb=$w1_mb; ni=$w1_n; nw=1 ;;
      *) echo "compare-pytorch.sh: unknown workload '$w'" >&2; exit 2 ;;
    esac
    if [[ $quick -eq 1 ]]; then mb=1; ni=1; nw=0; fi
    cfg="$tmp/$w-$mb.json"
    tp=0; [[ $task_parallel -eq 1 ]] && tp=1
    config_with_mb "$src" "$mb" "$cfg" "$tp"
    # W1 = configs/omniglot-20w1s.json (meta-step-bench's built-in setting; the bench switches
    # pruning and the architecture warm-up off). Each repetition is a fresh process of each side
    # that runs nw untimed iterations, then one timed one: the two sides alternate.
    ours_t=() torch_t=() gflop=0
    for i in $(seq 1 "$ni"); do
      "$bench" --config "$cfg" --threads "$t" --iters 1 --warmup "$nw" --phase search --json "$tmp/o.json" >/dev/null
      ours_t+=("$("$py" -c "import json; print(json.load(open('$tmp/o.json'))['search']['median_s'])")")
      if [[ $have_torch -eq 1 ]]; then
        "$py" "$here/torch_reference.py" "$w" --threads "$t" --iters 1 --warmup "$nw" --meta-batch "$mb" >"$tmp/t.json"
        torch_t+=("$("$py" -c "import json; print(json.load(open('$tmp/t.json'))['median_s'])")")
        gflop=$("$py" -c "import json; print(json.load(open('$tmp/t.json'))['gflop'])")
      fi
    done
    "$py" - "$w(mb=$mb$([[ $tp -eq 1 ]] && echo ,tp))" "$t" "$gflop" "$peak" "$(cut -d' ' -f1 /proc/loadavg)" "${ours_t[*]}" "${torch_t[*]:-}" <<'EOF'
import statistics, sys
w, t, gflop, peak, load = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
ours = [float(v) for v in sys.argv[6].split()]
torch = [float(v) for v in sys.argv[7].split()] if sys.argv[7].strip() else []
mo = statistics.median(ours)
if torch:
    mt = statistics.median(torch)
    print("| %s | %s | %.3f | %.3f | **%.2f** | %.1f | %.1f | %.1f | %.1f | %.3f | %s |" % (
        w, t, mo, mt, mo / mt, gflop, gflop / mo, gflop / mt, peak, gflop / peak, load))
else:
    print("| %s | %s | %.3f | - | - | - | - | - | %.1f | - | %s |" % (w, t, mo, peak, load))
EOF
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
