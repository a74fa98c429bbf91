#!/usr/bin/env python3
# A flights-like table as pandas writes it: 1,000,000 rows x 19 columns,
# ~10% nulls in 7 columns (integer columns with nulls become floats), one
# tz-aware timestamp column.
import pandas as pd, numpy as np, sys
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
rng = np.random.default_rng(1)
def gaps(a):
    a = a.astype(float); a[rng.random(n) < 0.1] = np.nan; return a
carriers = np.array(["UA","AA","B6","DL","EV","MQ","US","WN","VX","FL"])
airports = np.array(["EWR","LGA","JFK","IAH","MIA","ORD","ATL","BOS","LAX","SFO"])
tail = np.array(["N%05dA" % i for i in rng.integers(0, 4000, n)], dtype=object)
tail[rng.random(n) < 0.1] = None
df = pd.DataFrame({
  "year": np.full(n, 2013), "month": rng.integers(1, 13, n), "day": rng.integers(1, 29, n),
  "dep_time": gaps(rng.integers(1, 2400, n)), "sched_dep_time": rng.integers(500, 2359, n),
  "dep_delay": gaps(rng.integers(-30, 300, n)), "arr_time": gaps(rng.integers(1, 2400, n)),
  "sched_arr_time": rng.integers(1, 2359, n), "arr_delay": gaps(rng.integers(-60, 300, n)),
  "carrier": carriers[rng.integers(0, 10, n)], "flight": rng.integers(1, 8500, n),
  "tailnum": tail, "origin": airports[rng.integers(0, 3, n)], "dest": airports[rng.integers(0, 10, n)],
  "air_time": gaps(rng.integers(20, 700, n)), "distance": rng.integers(17, 4983, n),
  "hour": rng.integers(5, 24, n), "minute": rng.integers(0, 60, n),
  "time_hour": pd.Timestamp("2013-01-01T05:00:00Z") + pd.to_timedelta(np.sort(rng.integers(0, 365*24, n)), unit="h"),
})
df.to_csv(sys.argv[2] if len(sys.argv) > 2 else "flights.csv", index=False)
