#!/usr/bin/env bash
# The whole test suite: a Release build, a Debug build with AddressSanitizer + UBSan, and a
# separate consumer project built against the installed package. Every stage must pass.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${GENMOD_JOBS:-$(nproc)}
build_root=${GENMOD_BUILD_ROOT:-build-ci}
start=$(date +%s)
stage() { echo; echo "=== $* ($(( $(date +%s) - start )) s)"; }

# A few seconds: Doxygen lists every public entity of include/genmod/ without a `///` comment.
stage "Every public entity is documented (Doxygen)"
python3 scripts/check_docs.py

stage "Every test file keeps its code in its own namespace (the tests are a unity build)"
python3 scripts/check_test_namespaces.py

stage "Release build"
cmake -S . -B "$build_root/release" -DCMAKE_BUILD_TYPE=Release -DGENMOD_WERROR=ON -DGENMOD_BUILD_BENCHMARKS=ON
cmake --build "$build_root/release" -j "$jobs"
# CTest runs two test processes of two OpenMP threads each on a 2-core machine: threads that wait
# at a barrier must sleep, not spin, or they steal the other process's core.
export OMP_WAIT_POLICY=PASSIVE
stage "Release tests"
ctest --test-dir "$build_root/release" -j "$jobs" --output-on-failure
# CTest's Catch discovery silently drops test cases whose names CMake cannot hold in a list
# (a ';' or an unbalanced '['): make sure every test case the binaries know was registered.
# (Catch2 2.x exits with the number of tests it lists, hence the '|| true'.)
count_cases() { { "$1" --list-test-names-only || true; } | grep -c .; }
known=$(( $(count_cases "$build_root/release/tests/genmod_tests") + \
          $(count_cases "$build_root/release/tests/genmod_alloc_tests") ))
registered=$(ctest --test-dir "$build_root/release" -N | grep -cE "^ *Test +#[0-9]+: " || true)
echo "test cases: $known in the binaries, $registered registered with CTest (incl. non-Catch tests)"
if [ "$registered" -lt "$known" ]; then
  echo "some test cases were not registered with CTest: rename them (no ';' or '[' in test names)" >&2
  exit 1
fi

# -g1 (line tables, enough for the sanitizers' stack traces) instead of -g compiles 30 % faster;
# the [slow] training-quality cases ran in the Release stage and are left out here. This stage
# builds for baseline x86-64 (no -march=native), as users' own projects do by default: the
# Release stage covers the AVX-512 code paths, this one the portable ones (an SSE build once
# found Eigen's packed GEMM panels misaligned, which AVX builds tolerate).
stage "Debug + ASan + UBSan build"
cmake -S . -B "$build_root/sanitize" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O1" \
  -DGENMOD_SANITIZE=ON -DGENMOD_WERROR=ON -DGENMOD_HEADER_CHECK=OFF -DGENMOD_BUILD_EXAMPLES=OFF \
  -DGENMOD_BUILD_BENCHMARKS=OFF -DGENMOD_SLOW_TESTS=OFF -DGENMOD_NATIVE=OFF
cmake --build "$build_root/sanitize" -j "$jobs"
stage "Sanitized tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$build_root/sanitize" -j "$jobs" --output-on-failure

# The consumer is built as a user would build it: its own CMakeLists asks for -Wall -Wextra
# -march=native and nothing else, and -Werror here makes any warning from genmod's headers fail.
# Once with GCC and once with Clang: each accepts code the other rejects (Clang 14 could not
# deduce a class template's arguments through an alias template that GCC 12 accepted).
stage "Install and build the find_package consumer (GCC and Clang, -Wall -Wextra -Werror)"
prefix=$(mktemp -d)
cmake --install "$build_root/release" --prefix "$prefix" >/dev/null
for cxx in g++ clang++; do
  cmake -S examples/cmake-consumer -B "$build_root/consumer-$cxx" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS=-Werror -DCMAKE_PREFIX_PATH="$prefix"
  cmake --build "$build_root/consumer-$cxx" -j "$jobs"
  "$build_root/consumer-$cxx/genmod_consumer"
done
rm -rf "$prefix"

# A user's editor and debug build compile without optimisation, where GCC's intrinsics headers
# define some intrinsics as macros (xsimd 8 once failed there with "invalid cast"): the umbrella
# header must pass -fsyntax-only with both compilers, warnings as errors.
stage "The umbrella header without optimisation (-fsyntax-only, GCC and Clang)"
user_flags=(-std=c++20 -march=native -fopenmp -Wall -Wextra -Werror -I include -I /usr/include/eigen3)
printf '#include <genmod/genmod.hpp>\nint main() { return 0; }\n' > "$build_root/umbrella_only.cpp"
for cxx in g++ clang++; do
  "$cxx" "${user_flags[@]}" -fsyntax-only "$build_root/umbrella_only.cpp"
  echo "$cxx -fsyntax-only: clean"
done

# The umbrella already includes every public header: a file that includes it and one of those
# headers too only says the same thing twice.
stage "No file includes genmod/genmod.hpp next to a header it already includes"
umbrella_set() {  # the headers genmod.hpp includes, through the layer umbrellas it includes
  local f
  for f in "$@"; do
    grep -oE '^#include "genmod/[^"]+"' "include/$f" | sed -E 's/^#include "(.*)"$/\1/' | while read -r h; do
      echo "$h"
      case "$h" in genmod/*/nn.hpp | genmod/autodiff/autodiff.hpp | genmod/optim/optim.hpp | genmod/train/train.hpp)
        umbrella_set "$h" ;;
      esac
    done
  done
}
umbrella_headers=$(umbrella_set genmod/genmod.hpp | sort -u)
redundant=0
while read -r f; do
  while read -r h; do
    if grep -qxF "$h" <<<"$umbrella_headers"; then
      echo "$f includes genmod/genmod.hpp and $h, which it already includes" >&2
      redundant=1
    fi
  done < <(grep -oE '^#include [<"]genmod/[^>"]+[>"]' "$f" | sed -E 's/^#include [<"](.*)[>"]$/\1/' | grep -vxF genmod/genmod.hpp)
done < <(grep -rlE '^#include [<"]genmod/genmod.hpp[>"]' examples tests benchmarks)
[ "$redundant" -eq 0 ] || exit 1
echo "none"

# What a user pays to compile one program: each example's translation unit with the flags a user
# would choose, once header-only (the plain build: the limit applies to it) and once with
# GENMOD_EXTERN_TEMPLATES (how genmod builds its examples, and how a user who links the compiled
# part, genmod_add_instantiations(), builds them: the ops and the non-template code are compiled
# once, in genmod/instantiate.cpp). Goal: none above 15 s of CPU at -O2 (docs/compile_times.md);
# only a generous limit fails, as CI machines are shared.
stage "Compile time of each example translation unit (g++ -O2, user CPU seconds)"
limit=${GENMOD_COMPILE_LIMIT_SECONDS:-60}
timing_dir="$build_root/compile_time"
rm -rf "$timing_dir" && mkdir -p "$timing_dir"
# One file in one mode: its user and wall seconds and max RSS in $timing_dir/<n>.<mode>.txt.
# Files are compiled $jobs at a time: user CPU, the figure compared with the goal, does not depend
# on how many run.
time_one() {
  local n=$1 mode=$2 src=$3 defs=()
  [ "$mode" = compiled ] && defs=(-DGENMOD_EXTERN_TEMPLATES)
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "%U %e %M" -o "$timing_dir/$n.$mode.txt" \
      g++ "${user_flags[@]}" "${defs[@]}" -O2 -c "$src" -o "$timing_dir/$n.$mode.o"
  else
    TIMEFORMAT="%U %R 0"
    { time g++ "${user_flags[@]}" "${defs[@]}" -O2 -c "$src" -o "$timing_dir/$n.$mode.o"; } 2> "$timing_dir/$n.$mode.txt"
  fi
}
examples=(examples/*/*.cpp)
running=0
for n in "${!examples[@]}"; do
  for mode in plain compiled; do
    time_one "$n" "$mode" "${examples[$n]}" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
  done
done
wait
slow=0
printf '%-34s  %-35s %s\n' "" "header-only" "with the compiled part"
for n in "${!examples[@]}"; do
  line=$(printf '%-34s' "${examples[$n]}")
  for mode in plain compiled; do
    if [ ! -f "$timing_dir/$n.$mode.o" ]; then
      echo "${examples[$n]} did not compile ($mode)" >&2
      exit 1
    fi
    read -r user wall rss < "$timing_dir/$n.$mode.txt"
    line+=$(printf ' %6.1f s user %6.1f s wall %5d MB' "$user" "$wall" $((rss / 1024)))
    if [ "$mode" = plain ] && awk -v u="$user" -v l="$limit" 'BEGIN { exit !(u > l) }'; then slow=1; fi
  done
  echo "$line"
done
rm -rf "$timing_dir"
if [ "$slow" -ne 0 ]; then
  echo "an example took more than $limit s of CPU to compile (goal: 15 s; see docs/compile_times.md)" >&2
  exit 1
fi

if [ -x scripts/fuzz.sh ]; then
  stage "Fuzz the file parsers (bounded time)"
  GENMOD_FUZZ_SECONDS=${GENMOD_FUZZ_SECONDS:-20} ./scripts/fuzz.sh
fi

stage "All stages passed"
