#!/usr/bin/env bash
# Installs every Debian package genmod's build, tests, examples and benchmarks need. Idempotent:
# when everything is present it changes nothing and does not touch the network.
set -euo pipefail
packages=(
  build-essential cmake           # compiler, CMake >= 3.25
  libeigen3-dev                   # Eigen 3.4: dense linear algebra
  libxsimd-dev xtl-dev            # xsimd 8 SIMD wrappers (Debian's xsimd target links xtl)
  zlib1g-dev                      # gzip'd IDX files, NPZ
  libstb-dev                      # stb_image: PNG/JPEG decoding (genmod::images)
  catch2                          # Catch2 2.13 tests
  openmpi-bin libopenmpi-dev      # MPI: data-parallel training across processes (genmod::mpi) and its tests
  libbenchmark-dev                # Google Benchmark
  clang libclang-rt-14-dev        # libFuzzer for the parser fuzzers (scripts/fuzz.sh)
  doxygen python3                 # API reference (docs target); scripts/check_docs.py
  dataset-fashion-mnist           # the real data: /usr/share/datasets/fashion-mnist
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
