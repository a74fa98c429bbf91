#!/usr/bin/env bash
# Loading real-shaped data: a flights-like CSV as pandas writes it (19
# columns, ~10 % nulls in 7 of them, integer columns with nulls written as
# floats, a tz-aware timestamp column) loaded by `recmap load`, against the
# csv crate's bare parse rate of the same file (examples/csv_parse_rate.rs),
# in pairs (csv, load, csv, load, ...) so that each ratio is from one
# moment on a shared machine. With --infer also the inference pass alone
# (`recmap load --infer-only`) against the same yardstick.
#
#   bash benches/real_data/run.sh [ROWS] [PAIRS] [DIR]     (default 1000000 7 /var/tmp/recmap-real)
#
# Prints every pair and the median ratio (load rate / csv rate: higher is
# better; the target is >= 0.7, and >= 0.8 for the inference pass).
set -euo pipefail
ROWS=${1:-1000000}; PAIRS=${2:-7}; DIR=${3:-/var/tmp/recmap-real}
cd "$(dirname "$0")/../.."
cargo build --release --quiet --example csv_parse_rate
cargo build --release --quiet
T=${CARGO_TARGET_DIR:-target}/release
mkdir -p "$DIR"
CSV=$DIR/flights-$ROWS.csv
[ -f "$CSV" ] || python3 benches/real_data/gen_flights.py "$ROWS" "$CSV"
SPEC='year:u16,month:u8,day:u8,dep_time:u16?,sched_dep_time:u16,dep_delay:i16?,arr_time:u16?,sched_arr_time:u16,arr_delay:i16?,carrier:str[2],flight:u16,tailnum:str[7]?,origin:str[3],dest:str[3],air_time:u16?,distance:u16,hour:u8,minute:u8,time_hour:timestamp[s]'
cat "$CSV" > /dev/null   # warm the page cache
secs() { local s e; s=$(date +%s.%N); "$@" > /dev/null; e=$(date +%s.%N); echo "$e - $s" | bc; }
ratios=()
infer=()
for i in $(seq "$PAIRS"); do
  a=$("$T/examples/csv_parse_rate" "$CSV" 1 | tail -1 | sed -E 's/.* in ([0-9.]+) s.*/\1/')
  rm -f "$DIR/load.rmap" "$DIR/load.rmap-wal" "$DIR/load.rmap-lock"
  b=$(secs "$T/recmap" load "$DIR/load.rmap" -q --schema "$SPEC" "$CSV")
  r=$(echo "scale=3; $a / $b" | bc)
  ratios+=("$r")
  line="pair $i: csv $a s, load $b s, ratio $r"
  if [ "${INFER:-0}" = 1 ]; then
    c=$(secs "$T/recmap" load "$DIR/infer.rmap" --infer-only "$CSV")
    ri=$(echo "scale=3; $a / $c" | bc)
    infer+=("$ri")
    line="$line; inference pass $c s, ratio $ri"
  fi
  echo "$line"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "median load / csv-parse ratio: $(median "${ratios[@]}") over $PAIRS pairs ($ROWS rows, $(stat -c %s "$CSV") bytes)"
[ "${INFER:-0}" = 1 ] && echo "median inference-pass / csv-parse ratio: $(median "${infer[@]}")"
true
