#!/usr/bin/env bash
# Fuzz smoke test, on stable Rust: builds every fuzz target with cargo-fuzz
# (`--sanitizer none`, so no nightly is needed) and runs each one for a short
# time from the committed seed corpus. Fails on any crash, panic, timeout or
# out-of-memory; the input that did it is left in fuzz/artifacts/<target>/.
#
# Environment:
#   RECMAP_FUZZ_SECONDS     seconds per main target (default 20; schema_spec gets a quarter)
#   RECMAP_FUZZ_TARGETS     targets to run (default: open_bytes ops_model schema_spec)
#   RECMAP_FUZZ_OPTIONAL=1  exit 0 with a message if cargo-fuzz cannot be installed
#                           or no C++ compiler is present (libFuzzer is C++)
#   RECMAP_FUZZ_TARGET_DIR  cargo target directory (default /tmp/target-fuzz)
#
# Usage: bash fuzz/smoke.sh   (from anywhere; see docs/fuzzing.md)
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${RECMAP_FUZZ_SECONDS:-20}"
targets="${RECMAP_FUZZ_TARGETS:-open_bytes ops_model schema_spec}"
target_dir="${RECMAP_FUZZ_TARGET_DIR:-/tmp/target-fuzz}"
optional="${RECMAP_FUZZ_OPTIONAL:-0}"

unavailable() {
    if [ "$optional" = 1 ]; then
        echo "fuzz smoke: SKIPPED: $1 (RECMAP_FUZZ_OPTIONAL=1)"
        exit 0
    fi
    echo "fuzz smoke: FAILED: $1 (set RECMAP_FUZZ_OPTIONAL=1 to skip instead)" >&2
    exit 1
}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz smoke: cargo-fuzz missing; running: cargo install cargo-fuzz --locked"
    if ! cargo install cargo-fuzz --locked; then
        unavailable "could not install cargo-fuzz with 'cargo install cargo-fuzz --locked'"
    fi
fi
if ! command -v c++ >/dev/null 2>&1 && ! command -v clang++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
    unavailable "no C++ compiler (libfuzzer-sys builds libFuzzer from C++ source)"
fi
echo "fuzz smoke: $(cargo fuzz --version | head -1), $(rustc --version)"

# Scratch files of the targets: tmpfs when there is one (fsync is free there).
base=/dev/shm
[ -d "$base" ] && [ -w "$base" ] || base="${TMPDIR:-/tmp}"
scratch="$(mktemp -d "$base/recmap-fuzz-smoke.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
export RECMAP_FUZZ_DIR="$scratch/files"
mkdir -p "$RECMAP_FUZZ_DIR"

fuzz=(cargo fuzz)
common=(--sanitizer none --target-dir "$target_dir")

start=$(date +%s)
"${fuzz[@]}" build "${common[@]}"
echo "fuzz smoke: built in $(( $(date +%s) - start )) s"

failed=()
for t in $targets; do
    case "$t" in
        open_bytes) extra=(-max_len=300000 -dict=fuzz/open_bytes.dict); s=$secs ;;
        ops_model) extra=(-max_len=512 -len_control=0); s=$secs ;;
        schema_spec) extra=(-dict=fuzz/schema_spec.dict); s=$(( (secs + 3) / 4 )) ;;
        *) extra=(); s=$secs ;;
    esac
    # New inputs go to a scratch corpus (first directory); the committed
    # seeds (second directory) are only read.
    mkdir -p "$scratch/corpus/$t" "fuzz/corpus/$t"
    log="$scratch/$t.log"
    echo "fuzz smoke: $t for $s s"
    if "${fuzz[@]}" run "${common[@]}" "$t" "$scratch/corpus/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$s" -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
        "${extra[@]}" >"$log" 2>&1; then
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1 || true)
        cov=$( (grep -E '^#[0-9]+[[:space:]]+DONE' "$log" || true) | tail -1 | sed -E 's/.*(cov: [0-9]+).*/\1/')
        echo "fuzz smoke: $t ok: ${execs:-?} executions, ${rate:-?}/s, ${cov:-}"
    else
        echo "fuzz smoke: $t FAILED; last lines of its output:" >&2
        tail -n 40 "$log" >&2
        echo "fuzz smoke: $t: the panic:" >&2
        grep -m1 -A1 'panicked at' "$log" >&2 || echo "(no Rust panic: see the output above)" >&2
        failed+=("$t")
    fi
done

ran=$(echo $targets | wc -w)
if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz smoke: FAILED: ${failed[*]} (inputs in fuzz/artifacts/; see docs/fuzzing.md)" >&2
    echo "fuzz: $(( ran - ${#failed[@]} )) passed, ${#failed[@]} failed"
    exit 1
fi
echo "fuzz smoke: all targets passed in $(( $(date +%s) - start )) s"
echo "fuzz: $ran passed, 0 failed"
