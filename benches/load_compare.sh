#!/usr/bin/env bash
# Bulk-load comparison: `recmap load` of a numeric CSV against the `csv`
# crate's bare parse rate (examples/csv_parse_rate.rs) and SQLite's
# `.import`, and `recmap load --format bin` against the disk's own durable
# write rate.
#
#   bash benches/load_compare.sh [ROWS] [DIR]
#
# ROWS: data rows in the generated CSV (default 10000000, about 600 MB).
# DIR:  where the CSV, the stores and the logs go (default: a new temp dir;
#       the CSV is kept there and reused when the script runs again with
#       the same DIR and ROWS). Needs about 4x the CSV's size free.
# Environment: RUNS (default 5) rounds of every measurement, interleaved so
# that the machine's other load falls on all of them alike; medians are
# reported. BASE_RECMAP=/path/to/an/older/recmap adds its CSV and bin loads
# (to compare builds). CARGO_TARGET_DIR is honoured.
#
# Needs python3 (the generator) and sqlite3 (`apt-get install -y sqlite3`;
# the SQLite column is left out without it). Every timing is wall-clock and
# includes the program's start; recmap's and SQLite's include making the
# result durable (fdatasync), the parse rate writes nothing. The generation
# of the CSV and the export of the bin file are not timed.
set -euo pipefail

ROWS=${1:-10000000}
DIR=${2:-$(mktemp -d "${TMPDIR:-/tmp}/recmap-load-bench.XXXXXX")}
RUNS=${RUNS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

SPEC='id:u64,ts:i64,qty:u32,price:f64,ratio:f64,temp:f32'
SQL_TABLE='CREATE TABLE t(id INTEGER, ts INTEGER, qty INTEGER, price REAL, ratio REAL, temp REAL);'
CSV=$DIR/load-$ROWS.csv
BIN=$DIR/load-$ROWS.bin
LOG=$DIR/load_compare.log
: >"$LOG"

echo "building (release) ..." >&2
(cd "$ROOT" && cargo build --release --quiet --bin recmap --example csv_parse_rate)
RECMAP=$CARGO_TARGET_DIR/release/recmap
PARSE=$CARGO_TARGET_DIR/release/examples/csv_parse_rate

if [ ! -s "$CSV" ]; then
    echo "generating $CSV ($ROWS rows) ..." >&2
    # Deterministic (splitmix64): an id, a millisecond timestamp, a
    # quantity, a 2-decimal price, a double in [0,1) printed shortest
    # (mostly 16-17 digits) and a 1-decimal temperature.
    python3 - "$ROWS" "$CSV.tmp" <<'EOF'
import sys
n = int(sys.argv[1]); M = (1 << 64) - 1; x = 0x9E3779B97F4A7C15
with open(sys.argv[2], "w", buffering=1 << 20) as f:
    f.write("id,ts,qty,price,ratio,temp\n")
    lines = []
    for i in range(n):
        x = (x + 0x9E3779B97F4A7C15) & M
        z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        z ^= z >> 31
        ts = 1700000000000 + i * 37 + (z & 1023)
        qty = 1 + (z >> 10) % 100000
        price = ((z >> 27) % 1000000) / 100
        ratio = (z >> 11) * 2.0 ** -53
        temp = ((z >> 40) % 1001 - 400) / 10
        lines.append(f"{i},{ts},{qty},{price!r},{ratio!r},{temp!r}\n")
        if len(lines) == 65536:
            f.write("".join(lines)); lines.clear()
    f.write("".join(lines))
EOF
    mv "$CSV.tmp" "$CSV"
fi
CSV_BYTES=$(stat -c %s "$CSV")

HAVE_SQLITE=0
if command -v sqlite3 >/dev/null; then HAVE_SQLITE=1; fi

# The bin input: recmap's own export of the CSV load (not timed).
if [ ! -s "$BIN" ]; then
    rm -f "$DIR/src.rmap"
    "$RECMAP" load "$DIR/src.rmap" --schema "$SPEC" --quiet "$CSV"
    "$RECMAP" export "$DIR/src.rmap" --format bin >"$BIN"
    rm -f "$DIR/src.rmap"
fi
BIN_BYTES=$(stat -c %s "$BIN")

# Warm the page cache: every contender reads its input from memory.
cat "$CSV" "$BIN" >/dev/null

# Runs "$@" and appends "NAME WALL USER SYS" to $LOG; its stderr goes to $DIR/NAME.err.
# A `sync` first (not timed), so that no run pays for an earlier one's
# writeback or for the freeing (discard) of files deleted before it.
timed() {
    local name=$1
    shift
    sync
    local t
    t=$( { TIMEFORMAT='%R %U %S'; time "$@" >/dev/null 2>"$DIR/$name.err"; } 2>&1 )
    echo "$name $t" >>"$LOG"
}

# Commit time (seconds) from the store's tracing event of the last run.
commit_secs() {
    grep -o 'committed records=[0-9]* .*elapsed_us=[0-9]*' "$DIR/$1.err" | tail -1 |
        sed 's/.*elapsed_us=//' | awk '{ printf "%.3f", $1 / 1e6 }'
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$RUNS"); do
    echo "round $r/$RUNS ..." >&2
    # csv crate alone (one run per round; it prints its own timing too).
    timed parse "$PARSE" "$CSV" 1

    rm -f "$DIR/csv.rmap"
    RUST_LOG=recmap=info timed csv_load "$RECMAP" load "$DIR/csv.rmap" --schema "$SPEC" --quiet "$CSV"
    echo "csv_commit $(commit_secs csv_load)" >>"$LOG"

    if [ "$HAVE_SQLITE" = 1 ]; then
        rm -f "$DIR/t.db" "$DIR/t.db-journal"
        printf '%s\n' "$SQL_TABLE" '.mode csv' "BEGIN;" ".import --skip 1 $CSV t" "COMMIT;" >"$DIR/import.sql"
        timed sqlite sqlite3 "$DIR/t.db" ".read $DIR/import.sql"
    fi

    rm -f "$DIR/bin.rmap"
    RUST_LOG=recmap=info timed bin_load "$RECMAP" load "$DIR/bin.rmap" --schema "$SPEC" --format bin --quiet "$BIN"
    echo "bin_commit $(commit_secs bin_load)" >>"$LOG"

    rm -f "$DIR/dd.bin"
    timed dd dd if=/dev/zero of="$DIR/dd.bin" bs=4M count=256 conv=fdatasync
    rm -f "$DIR/dd.bin"
    # The same bytes as the bin load writes, copied durably (real data, same size).
    timed dd_data dd if="$BIN" of="$DIR/dd.bin" bs=4M conv=fdatasync
    rm -f "$DIR/dd.bin"

    if [ -n "${BASE_RECMAP:-}" ]; then
        rm -f "$DIR/base.rmap"
        timed base_csv_load "$BASE_RECMAP" load "$DIR/base.rmap" --schema "$SPEC" --quiet "$CSV"
        rm -f "$DIR/base.rmap"
        timed base_bin_load "$BASE_RECMAP" load "$DIR/base.rmap" --schema "$SPEC" --format bin --quiet "$BIN"
        rm -f "$DIR/base.rmap"
    fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# Sanity: every load has all the rows.
N=$("$RECMAP" info "$DIR/csv.rmap" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
NB=$("$RECMAP" info "$DIR/bin.rmap" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
[ "$N" = "$ROWS" ] && [ "$NB" = "$ROWS" ] || { echo "row count mismatch: csv $N, bin $NB, expected $ROWS" >&2; exit 1; }
if [ "$HAVE_SQLITE" = 1 ]; then
    NS=$(sqlite3 "$DIR/t.db" 'SELECT count(*) FROM t;')
    [ "$NS" = "$ROWS" ] || { echo "sqlite has $NS rows, expected $ROWS" >&2; exit 1; }
fi
rm -f "$DIR/csv.rmap" "$DIR/bin.rmap" "$DIR/t.db" "$DIR/t.db-journal"

# Median of field $2 (1-based after the name) for NAME $1.
med() {
    awk -v n="$1" -v f="$2" '$1 == n { print $(f + 1) }' "$LOG" | sort -g |
        awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
all() { awk -v n="$1" '$1 == n { printf "%s%s", s, $2; s = " " }' "$LOG"; }

P=$(med parse 1); L=$(med csv_load 1); LC=$(med csv_commit 1)
B=$(med bin_load 1); BC=$(med bin_commit 1); D=$(med dd 1); DD2=$(med dd_data 1)
BL=$(med base_csv_load 1); BB=$(med base_bin_load 1)
S=$( [ "$HAVE_SQLITE" = 1 ] && med sqlite 1 || echo nan)
DD_BYTES=$((4 * 1024 * 1024 * 256))

python3 - "$ROWS" "$CSV_BYTES" "$BIN_BYTES" "$DD_BYTES" "$P" "$L" "$LC" "$S" "$B" "$BC" "$D" "$DD2" "$BL" "$BB" \
    "$(all parse)" "$(all csv_load)" "$(all csv_commit)" "$(all sqlite)" "$(all bin_load)" "$(all bin_commit)" "$(all dd)" "$(all dd_data)" "$(all base_csv_load)" "$(all base_bin_load)" \
    "$(med parse 2) $(med parse 3)" "$(med csv_load 2) $(med csv_load 3)" "$(med sqlite 2) $(med sqlite 3)" "$(med bin_load 2) $(med bin_load 3)" <<'EOF'
import sys, math
a = sys.argv[1:]
rows, csvb, binb, ddb = (int(x) for x in a[:4])
P, L, LC, S, B, BC, D, D2, BL, BB = (float(x) for x in a[4:14])
runs = a[14:24]
cpu = a[24:28]
def rate(n, t): return n / t if t > 0 and not math.isnan(t) else float("nan")
def fmt_rows(t): return f"{rate(rows, t) / 1e6:.2f} M" if not math.isnan(t) else "n/a"
def mbs(b, t): return f"{rate(b, t) / 1e6:.0f}" if not math.isnan(t) else "n/a"
print(f"{rows} rows; CSV {csvb / 1e6:.1f} MB, bin {binb / 1e6:.1f} MB; median wall-clock of {len(runs[0].split())} interleaved runs\n")
print("| what | median s | rows/s | MB/s (input) | ratio |")
print("|---|---:|---:|---:|---|")
print(f"| `csv` crate alone (csv_parse_rate) | {P:.3f} | {fmt_rows(P)} | {mbs(csvb, P)} | 1.00 (yardstick) |")
print(f"| `recmap load` CSV (incl. final commit) | {L:.3f} | {fmt_rows(L)} | {mbs(csvb, L)} | {P / L:.2f}x the csv crate's rate |")
print(f"| `recmap load` CSV without its commit | {L - LC:.3f} | {fmt_rows(L - LC)} | {mbs(csvb, L - LC)} | commit (fdatasync) {LC:.3f} s |")
if not math.isnan(S):
    print(f"| `sqlite3 .import` into a typed table | {S:.3f} | {fmt_rows(S)} | {mbs(csvb, S)} | recmap is {S / L:.1f}x faster |")
print(f"| `recmap load --format bin` (incl. commit) | {B:.3f} | {fmt_rows(B)} | {mbs(binb, B)} | {binb / B / 1e9:.2f} GB/s |")
print(f"| `recmap load --format bin` without its commit | {B - BC:.3f} | {fmt_rows(B - BC)} | {mbs(binb, B - BC)} | commit {BC:.3f} s |")
print(f"| `dd bs=4M count=256 conv=fdatasync` (disk) | {D:.3f} | - | {mbs(ddb, D)} | {ddb / D / 1e9:.2f} GB/s durable |")
print(f"| `dd` of the bin file to a new file, `conv=fdatasync` | {D2:.3f} | - | {mbs(binb, D2)} | {binb / D2 / 1e9:.2f} GB/s durable |")
if not math.isnan(BL):
    print(f"| BASE_RECMAP `load` CSV | {BL:.3f} | {fmt_rows(BL)} | {mbs(csvb, BL)} | {P / BL:.2f}x the csv crate's rate; this build is {BL / L:.2f}x faster |")
if not math.isnan(BB):
    print(f"| BASE_RECMAP `load --format bin` | {BB:.3f} | {fmt_rows(BB)} | {mbs(binb, BB)} | {binb / BB / 1e9:.2f} GB/s; this build is {BB / B:.2f}x faster |")
print()
names = ["parse", "csv_load", "csv_commit", "sqlite", "bin_load", "bin_commit", "dd", "dd_data", "base_csv_load", "base_bin_load"]
print("Every run (s): " + "; ".join(f"{n} {r}" for n, r in zip(names, runs) if r))
print("Median CPU (user sys, s): " + "; ".join(f"{n} {c}" for n, c in zip(["parse", "csv_load", "sqlite", "bin_load"], cpu)))
EOF
echo
echo "load average before/after: $LOAD_BEFORE / $LOAD_AFTER; nproc $(nproc); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); kernel $(uname -r); $(df -T "$DIR" | awk 'NR == 2 { print $2 " on " $1 }'); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "raw timings: $LOG; inputs kept in $DIR"
