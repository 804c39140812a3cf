#!/usr/bin/env bash
# Runs one fuzz target for a bounded time and prints its figures.
#   run.sh FUZZER NAME WORKDIR SECONDS [extra libFuzzer flags, e.g. -runs=10000000]
# The corpus it starts from: the regression corpus (test/fuzz/corpus/NAME,
# every crash ever found; each must still pass), the seeds (seeds/NAME and,
# for the JSON targets, the OCI spec's samples and test/data), and what earlier
# runs in WORKDIR found. New inputs go to WORKDIR/NAME/corpus; a crash leaves
# WORKDIR/NAME/crash-* and fails the run.
set -euo pipefail
fuzzer=$1 name=$2 work=$3 secs=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
dir=$work/$name
mkdir -p "$dir/corpus" "$dir/seeds"

# Seeds are copied (flat, unique names) so libFuzzer never writes into the tree.
add_seeds() {
  local d=$1
  [ -d "$d" ] || return 0
  find "$d" -type f -name '*' | while read -r f; do
    cp "$f" "$dir/seeds/$(echo "$f" | md5sum | cut -c1-12)-$(basename "$f")"
  done
}
case $name in
  config|jdoc|mount_plan|seccomp_plan)
    add_seeds "$src/test/data/oci-samples/config"
    add_seeds "$src/../shared/oci-runtime-spec/schema/test/config" ;;
  process)
    add_seeds "$src/test/data/oci-samples/config" ;;
  state)
    add_seeds "$src/test/data/oci-samples/state"
    add_seeds "$src/../shared/oci-runtime-spec/schema/test/state" ;;
esac
add_seeds "$here/seeds/$name"
case $name in cli|netlink) ;; *) add_seeds "$here/seeds/json" ;; esac

dict=()
[ -f "$here/dict/$name.dict" ] && dict=(-dict="$here/dict/$name.dict")
case $name in cli|netlink) ;; *) [ -f "$here/dict/json.dict" ] && [ ${#dict[@]} -eq 0 ] && dict=(-dict="$here/dict/json.dict") ;; esac

# 1. Every regression input must pass (a fixed crash stays fixed).
if [ -d "$here/corpus/$name" ] && [ -n "$(ls -A "$here/corpus/$name")" ]; then
  "$fuzzer" -runs=0 "$here/corpus/$name" >"$dir/regress.log" 2>&1 || {
    cat "$dir/regress.log"; echo "fuzz-$name: a regression input fails"; exit 1; }
fi

# 2. The bounded run. Memory/time limits catch runaway inputs as findings.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
log=$dir/fuzz.log
dirs=("$dir/corpus" "$dir/seeds")
[ -d "$here/corpus/$name" ] && dirs+=("$here/corpus/$name")
set +e
"$fuzzer" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
  -max_len=16384 -print_final_stats=1 -artifact_prefix="$dir/" "$@" \
  "${dirs[@]}" >"$log" 2>&1
rc=$?
set -e
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
units=$(ls "$dir/corpus" | wc -l)
echo "fuzz-$name: ${runs:-0} executions in ${secs}s max (${rate:-0} exec/s), coverage ${cov:-?} edges, corpus $units inputs, exit $rc"
if [ $rc -ne 0 ]; then
  tail -60 "$log"
  ls "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-* 2>/dev/null || true
  exit 1
fi
