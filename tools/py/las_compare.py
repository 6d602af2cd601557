"""Checks that laspy reads two LAS/LAZ files identically: same header essentials and every
point dimension equal, value for value. Used to verify files hdmap writes.

Usage: las_compare.py ORIGINAL WRITTEN
Prints a JSON object {"ok": bool, "mismatches": [...], "dimensions": n}.
"""
import json
import sys

import laspy
import numpy as np

a = laspy.read(sys.argv[1])
b = laspy.read(sys.argv[2])
bad = []
for name, va, vb in [
    ("version", str(a.header.version), str(b.header.version)),
    ("point_format", a.header.point_format.id, b.header.point_format.id),
    ("point_count", a.header.point_count, b.header.point_count),
    ("scales", list(a.header.scales), list(b.header.scales)),
    ("offsets", list(a.header.offsets), list(b.header.offsets)),
    ("extra_dims", list(a.point_format.extra_dimension_names), list(b.point_format.extra_dimension_names)),
]:
    if va != vb:
        bad.append(f"header {name}: {va} != {vb}")
dims = list(a.point_format.dimension_names)
if not bad:
    for dim in dims:
        x, y = np.asarray(a[dim]), np.asarray(b[dim])
        if x.shape != y.shape or x.tobytes() != y.tobytes():
            n = int(np.sum(x != y)) if x.shape == y.shape else -1
            bad.append(f"dimension {dim}: {n} values differ")
print(json.dumps({"ok": not bad, "mismatches": bad, "dimensions": len(dims)}))
