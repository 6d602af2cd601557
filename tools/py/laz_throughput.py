"""laspy + lazrs side of benches/laz_throughput.rs: best-of-N wall time to read a LAZ file
into memory and to write it back as LAZ, using lazrs's parallel backend (all cores).

Usage: laz_throughput.py INPUT.laz OUTPUT.laz RUNS   -> JSON on stdout
"""
import json
import sys
import time

import laspy

src, dst, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
backend = laspy.LazBackend.LazrsParallel
read_s = write_s = float("inf")
las = None
for _ in range(runs):
    t = time.perf_counter()
    with laspy.open(src, laz_backend=backend) as r:
        las = r.read()
    read_s = min(read_s, time.perf_counter() - t)
for _ in range(runs):
    t = time.perf_counter()
    las.write(dst, laz_backend=backend)
    write_s = min(write_s, time.perf_counter() - t)
print(json.dumps({"read_s": read_s, "write_s": write_s, "points": len(las.points),
                  "laspy": laspy.__version__, "backend": backend.name}))
