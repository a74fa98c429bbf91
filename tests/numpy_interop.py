#!/usr/bin/env python3
"""numpy reads what the recmap CLI wrote, through the code it prints.

Builds stores with the CLI (the binary named by $RECMAP_BIN, else `recmap`
on PATH), runs `recmap schema PATH --numpy`, executes the printed code and
checks every committed record against `recmap export --format jsonl`, plus
that the views are zero-copy. Stores: the shipped sample (56-byte records,
padding at the end of each page), dense 16-byte records, every field type
(with NaN, infinities, -0.0 and subnormals), records larger than a page,
and an empty store.

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


def check_store(path, label):
    import numpy as np

    code = recmap("schema", path, "--numpy").decode()
    ns = {}
    exec(compile(code, f"<recmap schema --numpy {label}>", "exec"), ns)
    records, dtype = ns["records"], ns["dtype"]
    info = json.loads(recmap("info", path, "--json"))
    exported = [json.loads(line) for line in recmap("export", path, "--format", "jsonl").splitlines()]
    assert len(records) == info["records"] == len(exported), (len(records), info["records"], len(exported))
    assert dtype.itemsize == info["record_size"], (dtype.itemsize, info["record_size"])
    assert list(dtype.names) == [f["name"] for f in info["schema"]]
    assert [dtype.fields[n][1] for n in dtype.names] == [f["offset"] for f in info["schema"]]
    formats = dict(zip(code_names(code), code_formats(code)))
    for i, want in enumerate(exported):
        rec = records[i]
        for name in dtype.names:
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


def code_names(code):
    return json.loads(code.split('"names": ', 1)[1].split("\n", 1)[0].rstrip(","))


def code_formats(code):
    return json.loads(code.split('"formats": ', 1)[1].split("\n", 1)[0].rstrip(","))


def main():
    try:
        import numpy  # noqa: F401
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

        recmap("create", p("empty.rmap"), "--schema", "id:u64")
        check_store(p("empty.rmap"), "empty")
    print("numpy interop: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
