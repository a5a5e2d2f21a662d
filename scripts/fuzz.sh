#!/usr/bin/env bash
# Fuzzes genmod's file parsers (IDX, NPY, NPZ, CSV; PNG/JPEG decoding when stb_image is found)
# with libFuzzer + AddressSanitizer + UBSan for a bounded time each. Needs clang++ and libFuzzer (Debian: clang, libclang-rt-14-dev); without
# clang++ it says so and exits 0. Exits non-zero when a fuzzer finds a crash, leak, UB, timeout or
# an exception other than genmod::IOError, leaving the input under $build/artifacts/.
#
# Environment: GENMOD_FUZZ_SECONDS (per parser, default 30), GENMOD_BUILD_ROOT (default build-ci),
# GENMOD_JOBS (build parallelism).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz: clang++ is not installed, skipped (apt-get install clang libclang-rt-14-dev to enable)"
  exit 0
fi
# clang without its runtime libraries cannot link libFuzzer: say so rather than fail the build.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$probe/p.cpp"
if ! clang++ -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" >/dev/null 2>&1; then
  echo "fuzz: clang++ cannot link libFuzzer (missing libclang-rt-14-dev?), skipped"
  exit 0
fi

seconds=${GENMOD_FUZZ_SECONDS:-30}
jobs=${GENMOD_JOBS:-$(nproc)}
build=${GENMOD_BUILD_ROOT:-build-ci}/fuzz
parsers=(idx npy npz csv)

cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DGENMOD_FUZZ_FLAGS="-fsanitize=fuzzer,address,undefined" -DGENMOD_USE_OPENMP=OFF \
  -DGENMOD_BUILD_EXAMPLES=OFF -DGENMOD_BUILD_BENCHMARKS=OFF -DGENMOD_HEADER_CHECK=OFF >/dev/null
# The image fuzzer exists only when CMake found stb_image (genmod::images; Debian: libstb-dev).
if grep -q '^GENMOD_STB_LIBRARY:FILEPATH=/' "$build/CMakeCache.txt" && grep -q '^GENMOD_STB_INCLUDE_DIR:PATH=/' "$build/CMakeCache.txt"; then
  parsers+=(image)
fi
cmake --build "$build" -j "$jobs" --target "${parsers[@]/#/genmod_fuzz_}"

mkdir -p "$build/artifacts"
failed=()
for p in "${parsers[@]}"; do
  # New inputs go to a scratch corpus; the seeds in the repository stay as they are.
  work="$build/corpus/$p"
  mkdir -p "$work"
  dict=()
  [ -f "tests/fuzz/$p.dict" ] && dict=(-dict="tests/fuzz/$p.dict")
  echo "=== fuzz $p for ${seconds}s"
  # -rss_limit_mb also caps single allocations: a parser that trusts a size field trips it.
  if ! ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$build/tests/fuzz/genmod_fuzz_$p" "$work" "tests/fuzz/corpus/$p" "${dict[@]}" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
      -artifact_prefix="$build/artifacts/$p-" 2>"$build/fuzz-$p.log"; then
    failed+=("$p")
    tail -n 60 "$build/fuzz-$p.log"
  else
    grep -E "^(stat::number_of_executed_units|Done)" "$build/fuzz-$p.log" || tail -n 3 "$build/fuzz-$p.log"
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: FAILED for ${failed[*]}; reproducers in $build/artifacts/"
  exit 1
fi
echo "fuzz: no crash in ${parsers[*]} (${seconds}s each)"
