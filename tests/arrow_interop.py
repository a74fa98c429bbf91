#!/usr/bin/env python3
"""pyarrow and DuckDB read what `recmap export --format parquet|arrow|arrow-stream` wrote.

Builds stores with the CLI (the binary named by $RECMAP_BIN, else `recmap`
on PATH), exports each as Parquet, an Arrow IPC file and an Arrow IPC
stream, reads the three back with pyarrow and the Parquet file with DuckDB,
and compares every value of every record with `recmap export --format
jsonl`: nulls, integers of every width, floats (NaN, infinities, -0.0),
bools, timestamps of every unit (as integer counts, so nanoseconds are
exact), dates, strings (empty, non-ASCII, full length), bytes and numeric
arrays. Also the Arrow types, nullability and schema metadata, batches and
row groups of the sizes asked for, a DuckDB aggregate query, an empty
store, records larger than a page, and zstd compression.

Skips (exit 0, printing why) when pyarrow or duckdb is missing, except
with CI=true, where a missing package fails. Run by the Rust test
`pyarrow_and_duckdb_read_the_exports` in tests/arrow_export.rs.
"""

import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile

RECMAP = os.environ.get("RECMAP_BIN", "recmap")


def recmap(*args, stdin=None, out=None):
    r = subprocess.run([RECMAP, *args], input=stdin, capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"recmap {' '.join(args)} failed ({r.returncode}): {r.stderr.decode()}")
    if out is not None:
        with open(out, "wb") as f:
            f.write(r.stdout)
    return r.stdout


# ----- the records ----------------------------------------------------------

SPEC = (
    "id:u64,i8v:i8?,i16v:i16,i32v:i32?,i64v:i64,u8v:u8,u16v:u16?,u32v:u32,"
    "f32v:f32?,f64v:f64,flag:bool?,ts_s:timestamp[s]?,ts_ms:timestamp[ms],"
    "ts_us:timestamp[us]?,ts_ns:timestamp[ns]?,day:date?,name:str[12]?,"
    "raw:bytes[4]?,vec:f32[3]?,ivec:i16[2],_pad0:bytes[2]"
)
UNITS = {"ts_s": "s", "ts_ms": "ms", "ts_us": "us", "ts_ns": "ns"}
INT_RANGES = {
    "i8v": (-128, 127), "i16v": (-32768, 32767), "i32v": (-(2**31), 2**31 - 1),
    "i64v": (-(2**63), 2**63 - 1), "u8v": (0, 255), "u16v": (0, 65535), "u32v": (0, 2**32 - 1),
}
SPECIAL_FLOATS = ["NaN", "inf", "-inf", -0.0, 0.0, 1e-45, 3.4028234663852886e38, 5e-324]
NAMES = ["", "a", "ÅÄÖ", "twelve bytes", "π≈3.14", "x y", "日本語"]


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def make_rows(n, rng):
    rows = []
    for i in range(n):
        def maybe(v):
            return None if rng.random() < 0.2 else v

        def flt(single):
            if rng.random() < 0.1:
                return rng.choice(SPECIAL_FLOATS)
            v = rng.uniform(-1e6, 1e6)
            return f32(v) if single else v

        r = {"id": i}
        for k, (lo, hi) in INT_RANGES.items():
            v = rng.choice([lo, hi, 0, rng.randint(lo, hi)])
            r[k] = maybe(v) if k in ("i8v", "i32v", "u16v") else v
        r["f32v"] = maybe(flt(True))
        r["f64v"] = flt(False)
        r["flag"] = maybe(rng.random() < 0.5)
        for k in UNITS:
            # Seconds from 1901 to 2200, with sub-unit digits of the unit.
            s = rng.randint(-2**31, 7258118400)
            frac = {"s": "", "ms": f".{rng.randint(0, 999):03d}", "us": f".{rng.randint(0, 999999):06d}",
                    "ns": f".{rng.randint(0, 999999999):09d}"}[UNITS[k]]
            import datetime
            t = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=s)
            v = t.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"
            r[k] = v if k == "ts_ms" else maybe(v)
        import datetime
        d = datetime.date(1970, 1, 1) + datetime.timedelta(days=rng.randint(-25000, 60000))
        r["day"] = maybe(d.isoformat())
        r["name"] = maybe(rng.choice(NAMES))
        r["raw"] = maybe(bytes(rng.randrange(256) for _ in range(4)).hex())
        r["vec"] = maybe([flt(True) for _ in range(3)])
        r["ivec"] = [rng.randint(-32768, 32767) for _ in range(2)]
        rows.append(r)
    return rows


# ----- comparison -----------------------------------------------------------

def want_float(w, single):
    if isinstance(w, str):
        return float(w)
    return f32(w) if single else float(w)


def same_float(g, w):
    if math.isnan(w):
        return g is not None and math.isnan(g)
    return g == w and math.copysign(1.0, g) == math.copysign(1.0, w)


def ts_count(text, unit):
    """RFC 3339 UTC text ("…Z") as an integer count of `unit` since the epoch."""
    import numpy as np

    return int(np.datetime64(text.rstrip("Z"), unit).astype("int64"))


def day_count(text):
    import numpy as np

    return int(np.datetime64(text, "D").astype("int64"))


def ts_unit(ty, fmt):
    """The unit a reader sees: Parquet has no seconds, recmap writes those as ms."""
    unit = ty[ty.index("[") + 1:-1]
    return "ms" if unit == "s" and fmt == "parquet" else unit


def expect(field, ty, w, fmt=None):
    """The value a reader of `fmt` should give for JSON value `w` of `field` (type spec `ty`)."""
    if w is None:
        return None
    if ty.startswith("timestamp"):
        return ts_count(w, ts_unit(ty, fmt))
    if ty == "date":
        return day_count(w)
    if ty.startswith("bytes"):
        return bytes.fromhex(w)
    if ty.startswith("f32[") or ty.startswith("f64["):
        return [want_float(x, ty.startswith("f32")) for x in w]
    if ty in ("f32", "f64"):
        return want_float(w, ty == "f32")
    return w


def check(where, field, got, want):
    if want is None or got is None:
        ok = got is None and want is None
    elif isinstance(want, float):
        ok = isinstance(got, float) and same_float(got, want)
    elif isinstance(want, list):
        ok = isinstance(got, list) and len(got) == len(want) and all(
            same_float(g, x) if isinstance(x, float) else g == x for g, x in zip(got, want))
    else:
        ok = got == want and type(got) is type(want)
    if not ok:
        raise AssertionError(f"{where}: field {field}: read {got!r}, export --format jsonl has {want!r}")


def field_types(path):
    """Data fields (not validity, not padding) as (name, type spec) in order."""
    schema = json.loads(recmap("info", path, "--json"))["schema"]
    out = []
    for f in schema["fields"] if isinstance(schema, dict) else schema:
        name, ty = f["name"], f["type"]
        if ty.startswith("validity") or name.startswith("_pad"):
            continue
        out.append((name, ty.rstrip("?")))
    return out


def arrow_values(table, name, ty):
    """Column `name` of a pyarrow table as Python values comparable to `expect`."""
    import pyarrow as pa

    col = table.column(name)
    if ty.startswith("timestamp") or ty == "date":
        col = col.cast(pa.int64() if ty != "date" else pa.int32())
    return col.to_pylist()


def check_arrow_table(where, table, fields, exported, fmt):
    import pyarrow as pa

    assert table.num_rows == len(exported), f"{where}: {table.num_rows} rows, export has {len(exported)}"
    assert table.column_names == [n for n, _ in fields], f"{where}: columns {table.column_names}"
    for name, ty in fields:
        got = arrow_values(table, name, ty)
        for i, (g, rec) in enumerate(zip(got, exported)):
            check(f"{where} record {i}", name, g, expect(name, ty, rec[name], fmt))
    # Types and nullability.
    s = table.schema
    for name, ty in fields:
        t = s.field(name).type
        if ty.startswith("timestamp"):
            assert t == pa.timestamp(ts_unit(ty, fmt), tz="UTC"), f"{where}: {name} is {t}"
        elif ty == "date":
            assert t == pa.date32(), f"{where}: {name} is {t}"
        elif ty.startswith("str"):
            assert t == pa.string(), f"{where}: {name} is {t}"
        elif ty.startswith("bytes"):
            assert t == pa.binary(int(ty[6:-1])), f"{where}: {name} is {t}"
        elif ty == "bool":
            assert t == pa.bool_(), f"{where}: {name} is {t}"
        elif "[" in ty:
            base, n = ty[:-1].split("[")
            assert pa.types.is_fixed_size_list(t) and t.list_size == int(n), f"{where}: {name} is {t}"
    md = s.metadata or {}
    assert b"recmap.spec" in md and b"recmap.record_size" in md, f"{where}: metadata {md}"


def read_all(where, fmt, path):
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    if fmt == "parquet":
        return pq.read_table(path), pq.ParquetFile(path)
    if fmt == "arrow":
        with ipc.open_file(path) as r:
            return r.read_all(), r
    with open(path, "rb") as f:
        r = ipc.open_stream(f)
        return r.read_all(), r


def check_duckdb(where, path, fields, exported):
    import duckdb

    def sel(name, ty):
        q = f'"{name}"'
        if ty.startswith("timestamp"):
            unit = ty[ty.index("[") + 1:-1]
            return {"s": f"CAST(epoch({q}) AS BIGINT)", "ms": f"epoch_ms({q})", "us": f"epoch_us({q})",
                    "ns": f"epoch_ns({q})"}[unit]
        if ty == "date":
            return f"CAST({q} - DATE '1970-01-01' AS INTEGER)"
        return q

    con = duckdb.connect()
    cols = ", ".join(sel(n, t) for n, t in fields)
    rows = con.execute(f"SELECT {cols} FROM read_parquet('{path}')").fetchall()
    assert len(rows) == len(exported), f"{where}: DuckDB read {len(rows)} rows"
    for i, (row, rec) in enumerate(zip(rows, exported)):
        for (name, ty), g in zip(fields, row):
            if isinstance(g, tuple):
                g = list(g)
            check(f"{where} (DuckDB) record {i}", name, g, expect(name, ty, rec[name]))
    return con


def export_all(path, tmp, stem, *extra):
    outs = {}
    for fmt, ext in (("parquet", "parquet"), ("arrow", "arrow"), ("arrow-stream", "arrows")):
        out = os.path.join(tmp, f"{stem}.{ext}")
        recmap("export", path, "--format", fmt, *extra, out=out)
        outs[fmt] = out
    return outs


def check_store(where, path, tmp, *extra):
    fields = field_types(path)
    exported = [json.loads(line) for line in recmap("export", path, "--format", "jsonl").splitlines()]
    outs = export_all(path, tmp, os.path.basename(path), *extra)
    tables = {}
    for fmt, out in outs.items():
        table, reader = read_all(where, fmt, out)
        check_arrow_table(f"{where} ({fmt})", table, fields, exported, fmt)
        tables[fmt] = (table, reader)
    check_duckdb(where, outs["parquet"], fields, exported)
    return exported, outs, tables


def main():
    missing = []
    for mod in ("pyarrow", "duckdb", "numpy"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        msg = f"{', '.join(missing)} not installed (python3 -m pip install -r tests/requirements.txt)"
        if os.environ.get("CI") == "true":
            print(f"arrow interop: FAILED under CI=true: {msg}")
            return 1
        print(f"arrow interop: SKIPPED: {msg}")
        return 0
    import pyarrow.parquet as pq

    rng = random.Random(int(os.environ.get("ARROW_INTEROP_SEED", "13")))
    with tempfile.TemporaryDirectory() as tmp:
        p = lambda name: os.path.join(tmp, name)

        # Every type, nulls in every kind of field; several batches and
        # row groups (small sizes asked for).
        rows = make_rows(3000, rng)
        lines = "\n".join(json.dumps(r) for r in rows) + "\n"
        recmap("load", "-q", p("types.rmap"), "--schema", SPEC, "--format", "jsonl", "-", stdin=lines.encode())
        exported, outs, tables = check_store("types", p("types.rmap"), tmp, "--batch-rows", "700",
                                             "--row-group-rows", "1000")
        # The JSON export is what was loaded (so the comparison above is
        # against the data, not only against recmap's own reading of it).
        assert [r["id"] for r in exported] == list(range(3000))
        assert sum(r["i8v"] is None for r in exported) > 300
        assert any(r["name"] == "" for r in exported) and any(r["name"] is None for r in exported)
        pf = pq.ParquetFile(outs["parquet"])
        assert pf.metadata.num_row_groups == 3, pf.metadata.num_row_groups
        assert [pf.metadata.row_group(i).num_rows for i in range(3)] == [1000, 1000, 1000]
        assert pf.schema_arrow.field("i8v").nullable and not pf.schema_arrow.field("id").nullable
        _, r = tables["arrow"]
        assert r.num_record_batches == 5, r.num_record_batches  # 700 * 4 + 200
        assert "_valid" not in tables["arrow"][0].column_names
        assert "_pad0" not in tables["arrow"][0].column_names

        # DuckDB: a query against the Parquet file.
        import duckdb

        q = duckdb.connect().execute(
            f"SELECT count(*), count(i8v), sum(i16v), count(*) FILTER (WHERE flag), "
            f"max(ts_ns), min(day), count(DISTINCT name) FROM read_parquet('{outs['parquet']}')"
        ).fetchone()
        want_flags = sum(r["flag"] is True for r in exported)
        assert q[0] == 3000 and q[1] == sum(r["i8v"] is not None for r in exported), q
        assert q[2] == sum(r["i16v"] for r in exported), q
        assert q[3] == want_flags, q
        assert q[6] == len({r["name"] for r in exported if r["name"] is not None}), q

        # zstd, for both containers.
        for fmt, ext in (("parquet", "parquet"), ("arrow", "arrow")):
            out = p(f"types.zstd.{ext}")
            recmap("export", p("types.rmap"), "--format", fmt, "--compression", "zstd", out=out)
            table, _ = read_all("zstd", fmt, out)
            check_arrow_table(f"types ({fmt}, zstd)", table, field_types(p("types.rmap")), exported, fmt)

        # A range.
        out = p("range.parquet")
        recmap("export", p("types.rmap"), "--format", "parquet", "--range", "100..250", out=out)
        t = pq.read_table(out)
        assert t.column("id").to_pylist() == list(range(100, 250))

        # Dense 16-byte records, many of them: batches straight from the map.
        n = 200_000
        recmap("load", "-q", p("dense.rmap"), "--schema", "id:u64,v:f64", "--no-header",
               stdin="".join(f"{i},{i * 0.5}\n" for i in range(n)).encode())
        exported, outs, tables = check_store("dense", p("dense.rmap"), tmp)
        assert pq.ParquetFile(outs["parquet"]).metadata.num_row_groups == 1

        # Records larger than a page (a str[5000] and a u32[1100] array).
        big = [{"id": i, "text": ("é" * (i % 2400)) if i % 3 else None, "arr": [i * k for k in range(1100)]}
               for i in range(40)]
        recmap("load", "-q", p("big.rmap"), "--schema", "id:u32,text:str[5000]?,arr:u32[1100]",
               "--format", "jsonl", "-", stdin=("\n".join(json.dumps(r) for r in big) + "\n").encode())
        check_store("big", p("big.rmap"), tmp, "--batch-rows", "7")

        # An empty store: files with the columns and no rows.
        recmap("create", p("empty.rmap"), "--schema", "a:u32,b:str[4]?")
        check_store("empty", p("empty.rmap"), tmp)

    print("arrow interop: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
