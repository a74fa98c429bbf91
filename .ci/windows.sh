#!/usr/bin/env bash
# CI, Windows step: cross-builds the whole test suite for
# x86_64-pc-windows-gnu and runs it under Wine (docs/platforms.md says what
# is gated on Windows and why).
#
# Installs what it needs: the MinGW-w64 linker and Wine from the system's
# packages (apt), the Rust target (rustup), and a stand-in
# bcryptprimitives.dll built from .ci/wine-shim/ (Wine 8 lacks ProcessPrng,
# which Rust's std imports; without it no test binary starts). The Wine
# prefix lives under the target directory, so the step is self-contained.
# Fails, with a message saying why, if anything cannot be installed: a
# Windows step that cannot run is a failure, never a skip.
#
# Extra arguments go to `cargo test` (e.g. `--test smoke`); a full run
# (none, or only --no-fail-fast) also runs examples/ipc_flag as two
# Windows processes.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
target=x86_64-pc-windows-gnu
fail() {
    echo "windows.sh: $*" >&2
    exit 1
}

# 1. The linker and Wine.
find_wine() {
    local w
    for w in /usr/lib/wine/wine64 "$(command -v wine64 || true)" "$(command -v wine || true)"; do
        if [ -n "$w" ] && [ -x "$w" ]; then
            echo "$w"
            return 0
        fi
    done
    return 1
}
if ! command -v x86_64-w64-mingw32-gcc >/dev/null || ! find_wine >/dev/null; then
    sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || fail "need root or sudo to apt-get install gcc-mingw-w64-x86-64 wine64"
        sudo=(sudo)
    fi
    command -v apt-get >/dev/null || fail "apt-get not found: install gcc-mingw-w64-x86-64 and wine64 (Wine 8 or later) by hand"
    echo "windows.sh: installing gcc-mingw-w64-x86-64 wine64 (apt)"
    "${sudo[@]}" apt-get update -q >/dev/null ||
        fail "apt-get update failed (no network or no package mirror?): cannot install the Windows cross toolchain and Wine"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends \
        gcc-mingw-w64-x86-64 wine64 >/dev/null ||
        fail "apt-get install gcc-mingw-w64-x86-64 wine64 failed"
fi
WINE=$(find_wine) || fail "wine64 installed but not found (looked for /usr/lib/wine/wine64, wine64, wine)"
"$WINE" --version >/dev/null 2>&1 || fail "$WINE does not run"

# 2. The Rust target.
if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target" || fail "rustup target add $target failed"
fi

# 3. A Wine prefix of our own, with the ProcessPrng shim in system32.
tdir=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$tdir"
tdir=$(cd "$tdir" && pwd)
export WINEPREFIX="$tdir/wine-prefix"
export WINEDEBUG=-all
# No Mono or Gecko installer dialogs: nothing here needs .NET or HTML.
export WINEDLLOVERRIDES="mscoree,mshtml="
export DISPLAY=
shim="$tdir/wine-shim/bcryptprimitives.dll"
mkdir -p "$(dirname "$shim")"
x86_64-w64-mingw32-gcc -O2 -Wall -Werror -shared -o "$shim" \
    .ci/wine-shim/bcryptprimitives.c .ci/wine-shim/bcryptprimitives.def -ladvapi32 ||
    fail "building the bcryptprimitives.dll shim failed"
sys32="$WINEPREFIX/drive_c/windows/system32"
if [ ! -d "$sys32" ]; then
    echo "windows.sh: creating the Wine prefix $WINEPREFIX"
    "$WINE" wineboot --init >/dev/null 2>&1 || fail "wineboot --init failed for $WINEPREFIX"
    "$(dirname "$WINE")/wineserver" -w 2>/dev/null || true
fi
[ -d "$sys32" ] || fail "the Wine prefix has no $sys32"
cp "$shim" "$sys32/bcryptprimitives.dll"

# 4. The suite. Wine's own processes (wineserver) outlive a test binary by a
# few seconds; `wineserver -w` waits for them at the end.
# Wine starts a process in tens of milliseconds and runs the cross-process
# stress tests several times slower than Linux: fewer kills and shorter
# stress runs keep the step within its budget (the Linux step runs the
# defaults). Set them to override.
export RECMAP_CRASH_ITERATIONS=${RECMAP_CRASH_ITERATIONS:-10}
export RECMAP_ISOLATION_SECONDS=${RECMAP_ISOLATION_SECONDS:-4}
export RECMAP_STRESS_SECONDS=${RECMAP_STRESS_SECONDS:-5}
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$WINE"
echo "windows.sh: cargo test --release --target $target under $("$WINE" --version)"
status=0
cargo test --release --target "$target" "$@" || status=$?
# The two-process demo: a Windows process creates a named store and waits
# (a reader, wait_for_commit) while a second one opens it as the writer and
# sets the flag. Only in a full run (no arguments).
if [ $# -eq 0 ] || [ "$*" = --no-fail-fast ]; then
    echo "windows.sh: examples/ipc_flag as two Windows processes"
    cargo run --release --target "$target" --example ipc_flag || status=$?
fi
"$(dirname "$WINE")/wineserver" -w 2>/dev/null || true
exit "$status"
