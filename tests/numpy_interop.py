#!/usr/bin/env python3
"""numpy reads what the recmap CLI wrote, through the code it prints.

Builds stores with the CLI (the binary named by $RECMAP_BIN, else `recmap`
on PATH), runs `recmap schema PATH --numpy`, executes the printed code and
checks every committed record against `recmap export --format jsonl`, plus
that the views are zero-copy. Stores: the shipped sample (56-byte records,
padding at the end of each page), dense 16-byte records, every field type
(with NaN, infinities, -0.0 and subnormals), records larger than a page,
nulls in fields of every kind with timestamps of every unit and dates (as
pandas writes them: empty fields, NA, integral floats), and an empty store.
Nullable fields are checked through the printed `valid` and `column`
(numpy.ma masked where null), timestamps as datetime64[unit], dates through
`column` as datetime64[D].

Skips (exit 0, with a message) when numpy is not installed. Run by the Rust
test `numpy_reads_what_the_cli_wrote` in tests/cli.rs.
"""

import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RECMAP = os.environ.get("RECMAP_BIN", "recmap")


def recmap(*args, stdin=None):
    r = subprocess.run([RECMAP, *args], input=stdin, capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"recmap {' '.join(args)} failed ({r.returncode}): {r.stderr.decode()}")
    return r.stdout


def same_float(a, b, f32):
    import numpy as np

    if isinstance(b, str):  # "NaN", "inf", "-inf"
        b = float(b)
    if f32:
        b = float(np.float32(b))
    a = float(a)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def check_value(name, kind, got, want):
    import numpy as np

    if kind.startswith("S"):  # str[N]: numpy drops the trailing NULs
        ok = bytes(got).decode("utf-8") == want
    elif kind.endswith(")u1") and isinstance(want, str):  # bytes[N] as hex
        ok = bytes(np.asarray(got, dtype=np.uint8)).hex() == want
    elif kind.startswith("("):  # numeric array
        base = kind.split(")", 1)[1]
        vals = list(np.asarray(got))
        ok = len(vals) == len(want) and all(
            same_float(g, w, base == "<f4") if "f" in base else int(g) == w for g, w in zip(vals, want)
        )
    elif kind == "?":
        ok = bool(got) == want
    elif "f" in kind:
        ok = same_float(got, want, kind == "<f4")
    else:
        ok = int(got) == want
    if not ok:
        raise AssertionError(f"field {name} ({kind}): numpy has {got!r}, export has {want!r}")


def check_temporal(name, kind, got, want, date):
    import numpy as np

    if date:  # "2013-01-01" against column(name): datetime64[D]
        ok = got == np.datetime64(want, "D")
    else:  # "2013-01-01T05:00:00.5Z" (RFC 3339, UTC) against datetime64[unit]
        unit = kind.split("[", 1)[1].rstrip("]")
        ok = got == np.datetime64(want.removesuffix("Z"), unit)
    if not ok:
        raise AssertionError(f"field {name} ({kind}): numpy has {got!r}, export has {want!r}")


def check_nulls(ns, name, kind, i, want):
    """Nullable field `name` of record i: the mask and the masked value."""
    import numpy as np

    col = ns["column"](name)
    present = bool(ns["valid"](name)[i])
    masked = bool(np.ma.getmaskarray(col)[i].all())
    if want is None:
        assert not present and masked, (name, i, "null in export, not masked")
        # A null's slot holds zeros.
        assert not np.asarray(ns["records"][i][name]).tobytes().strip(b"\0"), (name, i)
        return
    assert present and not np.ma.getmaskarray(col)[i].any(), (name, i, "a value in export, masked")
    value = np.ma.getdata(col)[i]
    if name in ns["DATES"] or kind.startswith("<M8"):
        check_temporal(name, kind, value, want, name in ns["DATES"])
    else:
        check_value(name, kind, value, want)


def check_store(path, label):
    import numpy as np

    code = recmap("schema", path, "--numpy").decode()
    ns = {}
    exec(compile(code, f"<recmap schema --numpy {label}>", "exec"), ns)
    records, dtype = ns["records"], ns["dtype"]
    # Fields that are not columns: the validity bitmap and padding.
    types = {f["name"]: f["type"] for f in info_schema(path)}
    hidden = {n for n, t in types.items() if t.startswith("validity") or (n.startswith("_pad") and t.startswith("bytes"))}
    nullable = {n for n, t in types.items() if t.endswith("?")}
    assert set(ns["NULLABLE"]) == nullable, (ns["NULLABLE"], nullable)
    assert set(ns["DATES"]) == {n for n, t in types.items() if t.startswith("date")}, ns["DATES"]
    info = json.loads(recmap("info", path, "--json"))
    exported = [json.loads(line) for line in recmap("export", path, "--format", "jsonl").splitlines()]
    assert len(records) == info["records"] == len(exported), (len(records), info["records"], len(exported))
    assert dtype.itemsize == info["record_size"], (dtype.itemsize, info["record_size"])
    assert list(dtype.names) == [f["name"] for f in info["schema"]]
    assert [dtype.fields[n][1] for n in dtype.names] == [f["offset"] for f in info["schema"]]
    formats = dict(zip(code_names(code), code_formats(code)))
    dates = {name: ns["column"](name) for name in ns["DATES"]}
    for i, want in enumerate(exported):
        rec = records[i]
        for name in dtype.names:
            if name in hidden:
                assert name not in want, (name, "exported")
            elif name in nullable:
                check_nulls(ns, name, formats[name], i, want[name])
            elif name in dates:
                check_temporal(name, formats[name], dates[name][i], want[name], True)
            elif formats[name].startswith("<M8"):
                check_temporal(name, formats[name], rec[name], want[name], False)
            else:
                check_value(name, formats[name], rec[name], want[name])
    if len(records):
        if "grid" in ns:
            assert np.shares_memory(ns["grid"], ns["raw"]), "grid is a view of the map"
            if info["records_per_page"] * info["record_size"] == 4096:
                assert np.shares_memory(records, ns["raw"]), "dense records are a view"
        else:
            assert np.shares_memory(records, ns["raw"]), "records are a view of the map"
        for i in {0, len(records) // 2, len(records) - 1}:
            # Field by field: a numpy copy leaves the padding between fields undefined.
            for name in dtype.names:
                a, b = np.asarray(ns["record"](i)[name]), np.asarray(records[i][name])
                assert a.tobytes() == b.tobytes(), (i, name)
    print(f"  {label}: {len(records)} records of {dtype.itemsize} bytes match")


def info_schema(path):
    return json.loads(recmap("info", path, "--json"))["schema"]


def code_names(code):
    return json.loads(code.split('"names": ', 1)[1].split("\n", 1)[0].rstrip(","))


def code_formats(code):
    return json.loads(code.split('"formats": ', 1)[1].split("\n", 1)[0].rstrip(","))


def main():
    try:
        import numpy as np
    except ImportError:
        print("SKIP numpy interop: numpy is not installed (python3 -m pip install numpy)")
        return 0
    with tempfile.TemporaryDirectory() as d:
        p = lambda name: os.path.join(d, name)  # noqa: E731

        # The shipped sample: 56-byte records, 73 per page, padded pages.
        recmap("load", "-q", p("sample.rmap"),
               "--schema-file", os.path.join(ROOT, "examples/data/sample.schema"),
               os.path.join(ROOT, "examples/data/sample.csv"))
        check_store(p("sample.rmap"), "sample")

        # Dense: 16-byte records fill pages exactly.
        rows = "".join(f"{i},{i / 3}\n" for i in range(3000))
        recmap("load", "-q", p("dense.rmap"), "--schema", "id:u64,v:f64", "--no-header", stdin=rows.encode())
        check_store(p("dense.rmap"), "dense")

        # Every type, special floats included.
        spec = "a:u8,b:u16,c:u32,d:u64,e:i8,f:i16,g:i32,h:i64,x:f32,y:f64,ok:bool,s:str[12],raw:bytes[4],v:f32[3]"
        lines = [
            "255,65535,4294967295,18446744073709551615,-128,-32768,-2147483648,-9223372036854775808,0.1,0.1,true,hi,deadbeef,1;2;3",
            "0,0,0,0,127,32767,2147483647,9223372036854775807,-0,-0,false,,00,-0.5;1e-40;3.4028235e38",
            "1,2,3,4,5,6,7,8,1e-30,1e-300,1,ünï ✓,,0;0;0",
            "1,2,3,4,5,6,7,8,inf,-inf,0,x,01,1;1;1",
            "1,2,3,4,5,6,7,8,NaN,5e-324,0,x,01,1;1;1",
        ]
        recmap("load", "-q", p("types.rmap"), "--schema", spec, "--no-header", stdin="\n".join(lines * 100).encode())
        check_store(p("types.rmap"), "all types")

        # Records larger than a page: each takes two whole pages.
        big = "".join(f'{{"id":{i},"x":[{i},0.5,-1],"blob":"{(i % 256):02x}ff","s":"r{i}","b":{str(i % 2 == 0).lower()},"i":{-i}}}\n' for i in range(50))
        recmap("load", "-q", p("big.rmap"), "--schema", "id:u64,x:f32[3],blob:bytes[5000],s:str[7],b:bool,i:i16",
               "--format", "jsonl", stdin=big.encode())
        check_store(p("big.rmap"), "records over 4 KiB")

        # Nulls (empty fields, NA, NULL) in nullable fields of every kind,
        # integral floats in an integer field (as pandas writes them),
        # more than 8 of them (a 2-byte bitmap), timestamps of every unit
        # (before the epoch too), dates, and the gaps of a CLI layout.
        spec = ("year:u16,dep:f32?,carrier:str[3],tail:str[6]?,ts:timestamp[s],tms:timestamp[ms]?,"
                "tus:timestamp[us],tns:timestamp[ns]?,day:date,dday:date?,n8:u8?,n16:i16?,n32:u32?,"
                "n64:i64?,f64:f64?,ok:bool?,v:f32[2]?,raw:bytes[2]?")
        rows = ["year,dep,carrier,tail,ts,tms,tus,tns,day,dday,n8,n16,n32,n64,f64,ok,v,raw"]
        for i in range(300):
            def null(k, text):
                j = i + k
                return "" if j % 3 == 0 else "NA" if j % 7 == 0 else "NULL" if j % 11 == 0 else text

            rows.append(",".join([
                str(2000 + i % 30), null(0, f"{i}.0"), "UA", null(1, f"N{i}"),
                f"2013-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z", null(2, f"1969-12-31T23:59:{i % 60:02d}.{i:03d}Z"),
                f"2020-02-29T12:00:00.{i:06d}Z", null(3, f"2262-04-11T23:47:16.{i:09d}Z"),
                f"19{60 + i % 40}-03-0{1 + i % 9}", null(4, "1970-01-01"), null(5, str(i % 256)),
                null(6, str(-i)), null(7, f"{i * 1000}.0"), null(8, str(-(2**62) + i)), null(9, f"{i}.25"),
                null(10, "true" if i % 2 else "false"), null(11, f"{i};-0.5"), null(12, f"{i % 256:02x}ff"),
            ]))
        csv = p("nulls.csv")
        with open(csv, "w") as f:
            f.write("\n".join(rows) + "\n")
        recmap("load", "-q", p("nulls.rmap"), "--schema", spec, csv)
        check_store(p("nulls.rmap"), "nulls and timestamps")
        ns = {}
        exec(recmap("schema", p("nulls.rmap"), "--numpy").decode(), ns)
        col = ns["column"]("dep")
        assert isinstance(col, np.ma.MaskedArray) and 0 < col.count() < len(col), col.count()
        assert np.shares_memory(np.ma.getdata(ns["column"]("dep", ns["grid"])), ns["raw"]), "masked data is the view"
        assert ns["records"]["tns"].dtype == np.dtype("<M8[ns]") and ns["column"]("day").dtype == np.dtype("<M8[D]")
        assert ns["valid"]("raw").shape == (300,) and ns["NULLABLE"]["raw"] == ("_valid", 12)

        recmap("create", p("empty.rmap"), "--schema", "id:u64")
        check_store(p("empty.rmap"), "empty")
    print("numpy interop: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
