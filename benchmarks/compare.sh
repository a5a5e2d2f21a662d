#!/usr/bin/env bash
# genmod against PyTorch on this machine, in one run, alternately.
#
#   benchmarks/compare.sh [options]
#
# Builds bench_models and fma_peak (Release, -march=native) in the build directory, measures the
# FMA peak, then for each round, workload and thread count runs ours (bench_models) and PyTorch's
# reference (shared/ref/bench_step.py) one after the other, under every PyTorch peer (--peers),
# and prints per workload and thread count: our median s/step, PyTorch's (the best peer and
# configuration at that thread count, named), the ratio ours/PyTorch, both as GFLOP/s and share of
# the measured FMA peak, the spread of the per-round medians, and both sides' peak memory.
#
# PyTorch configurations (the ones shared/ref/README.md lists as best on 2 cores), per peer:
#   1 thread:  --threads 1
#   2 threads: --threads 2 | --threads 2 --blas-threads 1 | --threads 1 --blas-threads 2 |
#              --threads default | OMP_WAIT_POLICY=PASSIVE --threads 2
#   and with PyTorch >= 2 also torch.compile (bench_step.py --compile, at least 8 warm-up steps so
#   that compilation stays out of the timed steps): --threads N --compile, and at 2 threads
#   OMP_WAIT_POLICY=PASSIVE --threads 2 --compile.
# genmod: plain, and at 2 threads also with OMP_WAIT_POLICY=PASSIVE (libgomp's spinning barriers
# lose whole scheduler slices when the cores are shared with other processes).
# "best" = the configuration with the lowest median (median over rounds), on each side; all are
# listed in the JSON-lines log and below the table.
#
# Options:
#   --build-dir DIR     build directory (default: <repo>/build-bench)
#   --no-build          use the executables already in the build directory
#   --workloads "A B"   subset of: mlp_vae conv_vae dcgan realnvp_mlp pixelcnn (default: all)
#   --threads "1 2"     thread counts (default: "1 2")
#   --steps N           timed steps per run, both sides (default 30)
#   --warmup N          warm-up steps per run, both sides (default 5)
#   --rounds R          alternating rounds; medians over rounds are reported (default 1)
#   --pytorch-configs all|plain   all the configurations above, or only --threads N (default all)
#   --peers "PY ..."    Python interpreters whose torch is measured (default: $PYTHON if set, else
#                       those of /opt/torch2/bin/python (PyTorch 2 from PyPI, see the developers'
#                       setup) and /usr/bin/python3 (Debian's python3-torch) that import torch)
#   --ops               also compare the per-op benchmarks (bench_ops vs bench_ops.py, first peer) as ratios
#   --ops-only          only the per-op comparison
#   --out DIR           where the JSON-lines logs go (default: <build-dir>/compare-<date>)
#
#   --fetch-openblas    download Debian's libopenblas0-pthread (apt-get download, no install) and
#                       extract it into <build-dir>/openblas; PyTorch's runs then use it (see below)
#
# Environment: GENMOD_REF_DIR (default <repo>/../shared/ref), PYTHON (one peer, as --peers),
# FASHION_MNIST_DIR / GENMOD_DATA_DIR (data directory, passed to both sides),
# GENMOD_TORCH_BLAS_DIR: a directory holding libblas.so.3 / libopenblas.so.0, put first on
# LD_LIBRARY_PATH for the PyTorch runs only. Debian's torch calls BLAS through libblas.so.3; on a
# machine where that alternative is the netlib reference BLAS (no libopenblas0 installed), every
# torch Linear runs 10x slower than the reference README assumes. The tables say which BLAS
# torch used (OpenBLAS core name, or "reference BLAS"; PyPI's PyTorch 2 brings MKL and oneDNN).
set -euo pipefail

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
ref_dir=${GENMOD_REF_DIR:-$repo/../shared/ref}
peers=${PYTHON:-}
build_dir=$repo/build-bench
do_build=1
workloads="mlp_vae conv_vae dcgan realnvp_mlp pixelcnn"
threads_list="1 2"
steps=30
warmup=5
rounds=1
configs=all
do_models=1
do_ops=0
out=""
fetch_openblas=0

while [[ $# -gt 0 ]]; do
  case $1 in
    --build-dir) build_dir=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --workloads) workloads=$2; shift 2 ;;
    --threads) threads_list=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --pytorch-configs) configs=$2; shift 2 ;;
    --peers) peers=$2; shift 2 ;;
    --ops) do_ops=1; shift ;;
    --ops-only) do_ops=1; do_models=0; shift ;;
    --out) out=$2; shift 2 ;;
    --fetch-openblas) fetch_openblas=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

[[ -f $ref_dir/bench_step.py ]] || { echo "compare.sh: no bench_step.py in $ref_dir (set GENMOD_REF_DIR)" >&2; exit 2; }
if [[ -z $peers ]]; then
  for py in /opt/torch2/bin/python /usr/bin/python3; do
    [[ -x $py ]] && "$py" -c 'import torch' 2>/dev/null && peers="$peers $py"
  done
fi
peers=${peers# }  # without the leading space of the loop above
[[ -n $peers ]] || { echo "compare.sh: no Python with torch found (give --peers or PYTHON)" >&2; exit 2; }
python=${peers%% *}  # runs the table script (any of the peers has json and statistics)
if [[ -n ${GENMOD_DATA_DIR:-} && -z ${FASHION_MNIST_DIR:-} ]]; then export FASHION_MNIST_DIR=$GENMOD_DATA_DIR; fi
if [[ -n ${FASHION_MNIST_DIR:-} && -z ${GENMOD_DATA_DIR:-} ]]; then export GENMOD_DATA_DIR=$FASHION_MNIST_DIR; fi
out=${out:-$build_dir/compare-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"

targets="bench_models fma_peak"
[[ $do_ops == 1 ]] && targets="$targets bench_ops"
if [[ $do_build == 1 ]]; then
  cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DGENMOD_BUILD_TESTS=OFF -DGENMOD_BUILD_EXAMPLES=OFF \
    -DGENMOD_BUILD_BENCHMARKS=ON >/dev/null
  # shellcheck disable=SC2086
  cmake --build "$build_dir" -j2 --target $targets
fi
bin=$build_dir/benchmarks

if [[ $fetch_openblas == 1 ]]; then
  ob=$build_dir/openblas
  if [[ ! -f $ob/root/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ]]; then
    mkdir -p "$ob"
    (cd "$ob" && apt-get download libopenblas0-pthread >/dev/null 2>&1 && dpkg-deb -x libopenblas0-pthread_*.deb root)
  fi
  export GENMOD_TORCH_BLAS_DIR=$ob/root/usr/lib/x86_64-linux-gnu/openblas-pthread
fi
torch_ld=${GENMOD_TORCH_BLAS_DIR:+$GENMOD_TORCH_BLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}
torch_ld=${torch_ld:-${LD_LIBRARY_PATH:-}}
peer_blas() {  # python -> what its torch multiplies with
  LD_LIBRARY_PATH=$torch_ld "$1" -c "import sys; sys.path.insert(0, '$ref_dir'); import common, torch; common.setup_threads(1); common.import_torch(1); i = common.openblas_info(); print('MKL' if torch.backends.mkl.is_available() else 'OpenBLAS ' + i['corename'] if i else 'reference BLAS (libblas.so.3 is not OpenBLAS)')" 2>/dev/null || echo unknown
}
peer_version() { "$1" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo none; }

log() { echo "[$(date +%H:%M:%S) load $(cut -d' ' -f1 /proc/loadavg)] $*" >&2; }

{
  echo "{\"what\": \"machine\", \"cpu\": \"$(lscpu | sed -n 's/^Model name: *//p' | head -1)\", \"cores\": $(nproc)," \
       "\"git\": \"$(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD -- include benchmarks || echo +dirty)\"}"
  for py in $peers; do
    echo "{\"what\": \"peer\", \"python\": \"$py\", \"torch\": \"$(peer_version "$py")\", \"blas\": \"$(peer_blas "$py")\"," \
         "\"ld_library_path\": \"$torch_ld\"}"
  done
} >"$out/machine.jsonl"
log "FMA peak"
"$bin/fma_peak" | tee "$out/fma_peak.jsonl" >&2

# One PyTorch run: prints one JSON line (peer, config, median, peak memory) to stdout.
pytorch_step() {  # python workload threads label env... -- args...
  local py=$1 w=$2 t=$3 label=$4; shift 4
  local envs=() args=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  args=("$@")
  # torch.compile compiles during the first calls: keep at least 8 of them out of the timing.
  local wu=$warmup
  [[ " ${args[*]} " == *" --compile "* && $wu -lt 8 ]] && wu=8
  local tmp; tmp=$(mktemp)
  if env LD_LIBRARY_PATH="$torch_ld" "${envs[@]}" "$py" "$ref_dir/bench_step.py" "$w" "${args[@]}" --warmup "$wu" --steps "$steps" \
       --out "$tmp" >/dev/null 2>"$tmp.err"; then
    "$py" -c 'import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps({"side":"pytorch","workload":r["workload"],"threads":int(sys.argv[2]),"config":"torch " + r["torch_version"] + ": " + sys.argv[3],"median_s":r["median_s_per_step"],"gflops":r["achieved_gflops_at_median"],"torch":r["torch_version"],"peak_rss_kib":r.get("peak_rss_kib")}))' \
      "$tmp" "$t" "$label"
  else
    echo "{\"side\": \"pytorch\", \"workload\": \"$w\", \"threads\": $t, \"config\": \"$py: $label\", \"error\": \"$(tail -1 "$tmp.err" | tr '"' "'")\"}"
  fi
  rm -f "$tmp" "$tmp.err"
}

pytorch_configs() {  # threads torch-major -> lines "label|env|args"
  local t=$1 major=$2
  echo "--threads $t||--threads $t"
  if [[ $configs == all && $t == 2 ]]; then
    echo "--threads 2 --blas-threads 1||--threads 2 --blas-threads 1"
    echo "--threads 1 --blas-threads 2||--threads 1 --blas-threads 2"
    echo "--threads default||--threads default"
    echo "OMP_WAIT_POLICY=PASSIVE --threads 2|OMP_WAIT_POLICY=PASSIVE|--threads 2"
  fi
  if [[ $configs == all && $major -ge 2 ]]; then
    echo "--threads $t --compile||--threads $t --compile"
    [[ $t == 2 ]] && echo "OMP_WAIT_POLICY=PASSIVE --threads 2 --compile|OMP_WAIT_POLICY=PASSIVE|--threads 2 --compile"
  fi
  return 0
}

genmod_configs() {  # threads -> lines "label|env"
  echo "plain|"
  [[ $configs == all && $1 -gt 1 ]] && echo "OMP_WAIT_POLICY=PASSIVE|OMP_WAIT_POLICY=PASSIVE"
  return 0
}

if [[ $do_models == 1 ]]; then
  models_log=$out/models.jsonl
  : >"$models_log"
  for ((r = 1; r <= rounds; r++)); do
    for w in $workloads; do
      for t in $threads_list; do
        while IFS='|' read -r label envs; do
          log "round $r: $w, $t thread(s): genmod $label"
          # shellcheck disable=SC2086
          env $envs "$bin/bench_models" --workload "$w" --threads "$t" --steps "$steps" --warmup "$warmup" |
            sed "s/^{/{\"side\": \"genmod\", \"round\": $r, \"config\": \"$label\", /" | tee -a "$models_log" >&2
        done < <(genmod_configs "$t")
        for py in $peers; do
          major=$(peer_version "$py" | cut -d. -f1)
          [[ $major =~ ^[0-9]+$ ]] || major=0
          while IFS='|' read -r label envs args; do
            log "round $r: $w, $t thread(s): pytorch ($py) $label"
            # shellcheck disable=SC2086
            pytorch_step "$py" "$w" "$t" "$label" $envs -- $args | sed "s/^{/{\"round\": $r, /" | tee -a "$models_log" >&2
          done < <(pytorch_configs "$t" "$major")
        done
      done
    done
  done
fi

if [[ $do_ops == 1 ]]; then
  ops_log=$out/ops.jsonl
  : >"$ops_log"
  for ((r = 1; r <= rounds; r++)); do
    for t in $threads_list; do
      log "round $r: ops, $t thread(s): genmod bench_ops"
      "$bin/bench_ops" --benchmark_filter="/$t/real_time\$" --benchmark_format=json 2>/dev/null |
        "$python" -c '
import json, sys
r, t = int(sys.argv[1]), int(sys.argv[2])
for b in json.load(sys.stdin)["benchmarks"]:
    kind, name = b["run_name"].split("/")[:2]
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
    print(json.dumps({"side": "genmod", "round": r, "threads": t, "name": name, "pass": kind,
                      "ms": b["real_time"] * scale, "gflops": b.get("GFLOP/s")}))
' "$r" "$t" | tee -a "$ops_log" >&2
      log "round $r: ops, $t thread(s): pytorch bench_ops.py"
      LD_LIBRARY_PATH="$torch_ld" "$python" "$ref_dir/bench_ops.py" --threads "$t" 2>/dev/null | "$python" -c '
import json, sys
r = int(sys.argv[1])
for line in sys.stdin:
    o = json.loads(line)
    for p in ("fwd", "bwd"):
        print(json.dumps({"side": "pytorch", "round": r, "threads": o["threads"], "name": o["name"], "pass": p,
                          "ms": o[p + "_ms"], "gflops": o[p + "_gflops"]}))
' "$r" | tee -a "$ops_log" >&2
    done
  done
fi

# ------------------------------------------------------------------------------------ the tables
"$python" - "$out" <<'EOF'
import json, os, statistics, sys
from collections import defaultdict
out = sys.argv[1]
def lines(name):
    p = os.path.join(out, name)
    return [json.loads(l) for l in open(p) if l.strip()] if os.path.exists(p) else []
peak = {}
for o in lines("fma_peak.jsonl"):
    if o.get("simd_bits") == max(x.get("simd_bits", 0) for x in lines("fma_peak.jsonl")):
        peak[o["threads"]] = o["gflops"]
print(f"# results in {out}")
for o in lines("machine.jsonl"):
    if o.get("what") == "machine": print(f"# {o['cpu']}, {o['cores']} cores; genmod {o['git']}")
    if o.get("what") == "peer": print(f"# peer: torch {o['torch']} ({o['python']}), BLAS: {o['blas']}")
print("# FMA peak (GFLOP/s, widest SIMD): " + ", ".join(f"{t} thread(s) {g:.0f}" for t, g in sorted(peak.items())))
m = lines("models.jsonl")
if m:
    ours_cfg, torch = defaultdict(lambda: defaultdict(list)), defaultdict(lambda: defaultdict(list))
    flops, allocs, heap, rss = {}, {}, {}, defaultdict(list)
    for o in m:
        key = (o["workload"], o["threads"])
        if o.get("side") == "genmod" and "median_s" in o:
            ours_cfg[key][o.get("config", "plain")].append(o["median_s"]); flops[o["workload"]] = o["flops_per_step"]
            allocs[key] = o["allocs_per_step"]; heap[key] = o.get("heap_calls_per_step")
            if o.get("peak_rss_kib"): rss[key + ("genmod", o.get("config", "plain"))].append(o["peak_rss_kib"])
        elif o.get("side") == "pytorch" and "median_s" in o:
            torch[key][o["config"]].append(o["median_s"])
            if o.get("peak_rss_kib"): rss[key + ("pytorch", o["config"])].append(o["peak_rss_kib"])
    best_ours = {k: min(v.items(), key=lambda kv: statistics.median(kv[1])) for k, v in ours_cfg.items()}
    ours = {k: c[1] for k, c in best_ours.items()}
    def spread(runs):  # the per-round medians' range, when there are several rounds
        return f" [{min(runs):.4g}-{max(runs):.4g}]" if len(runs) > 1 else ""
    def mib(key, side, cfg):
        r = rss.get(key + (side, cfg))
        return f"{max(r) / 1024:.0f}" if r else "n/a"
    print()
    print("| workload | threads | genmod s/step (best config) [range over rounds] | PyTorch s/step (best peer and config) [range] | ours/PyTorch | genmod GFLOP/s (% peak) | PyTorch GFLOP/s (% peak) | peak MiB genmod / PyTorch | pool allocs/step | heap calls/step |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    order = ["mlp_vae", "conv_vae", "dcgan", "realnvp_mlp", "pixelcnn"]
    for key in sorted(ours, key=lambda k: (order.index(k[0]) if k[0] in order else 9, k[1])):
        w, t = key
        o = statistics.median(ours[key])
        pk = peak.get(t, float("nan"))
        go = flops[w] / o / 1e9
        mem = mib(key, "genmod", best_ours[key][0])
        if torch.get(key):
            cfg, runs = min(torch[key].items(), key=lambda kv: statistics.median(kv[1]))
            p = statistics.median(runs)
            gp = flops[w] / p / 1e9
            ptxt, ratio, gptxt = f"{p:.4g} ({cfg}){spread(runs)}", f"{o / p:.2f}", f"{gp:.1f} ({100 * gp / pk:.0f} %)"
            mem += " / " + mib(key, "pytorch", cfg)
        else:
            ptxt = ratio = gptxt = "n/a"
        print(f"| {w} | {t} | {o:.4g} ({best_ours[key][0]}){spread(ours[key])} | {ptxt} | {ratio} | {go:.1f} ({100 * go / pk:.0f} %) | {gptxt} | {mem} | {allocs[key]:.3g} | {heap[key]} |")
    if any(len(v) > 1 for v in ours.values()):
        print("\n(medians over rounds; per-round genmod medians: " +
              "; ".join(f"{w}/{t}: " + ", ".join(f"{x:.4g}" for x in v) for (w, t), v in ours.items()) + ")")
    print("\ngenmod, every configuration (median over rounds, s/step):")
    for key in sorted(ours_cfg):
        print(f"  {key[0]:12s} {key[1]}: " + "; ".join(f"{c}: {statistics.median(v):.4g}" for c, v in ours_cfg[key].items()))
    print("\nPyTorch, every configuration (median over rounds, s/step):")
    for key in sorted(torch):
        print(f"  {key[0]:12s} {key[1]}: " + "; ".join(f"{c}: {statistics.median(v):.4g}" for c, v in torch[key].items()))
ops = lines("ops.jsonl")
if ops:
    acc = defaultdict(list)
    for o in ops:
        acc[(o["name"], o["pass"], o["threads"], o["side"])].append(o["ms"])
    names = []
    for o in ops:
        if o["name"] not in names: names.append(o["name"])
    threads = sorted({o["threads"] for o in ops})
    print()
    print("| op shape | pass | " + " | ".join(f"{t}T genmod ms | {t}T PyTorch ms | {t}T ratio" for t in threads) + " |")
    print("|---|---|" + "---|---|---|" * len(threads))
    for n in names:
        for p in ("fwd", "bwd"):
            cells = []
            for t in threads:
                g, q = acc.get((n, p, t, "genmod")), acc.get((n, p, t, "pytorch"))
                gm = statistics.median(g) if g else None
                qm = statistics.median(q) if q else None
                cells += [f"{gm:.3f}" if gm else "n/a", f"{qm:.3f}" if qm else "n/a",
                          f"{gm / qm:.2f}" if gm and qm else "n/a"]
            print(f"| {n} | {p} | " + " | ".join(cells) + " |")
EOF
