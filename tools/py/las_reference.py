"""Reference facts about LAS/LAZ files from laspy (+lazrs) and pyproj, for hdmap's tests.

Usage: las_reference.py FILE...
Prints one JSON object per file: point counts, the CRS's EPSG code as pyproj identifies it,
and SHA-256 digests of the main dimensions in fixed little-endian dtypes.
"""
import hashlib
import json
import sys

import laspy
import numpy as np


def digest(arr, dtype):
    return hashlib.sha256(np.ascontiguousarray(np.asarray(arr), dtype=dtype).tobytes()).hexdigest()


for path in sys.argv[1:]:
    las = laspy.read(path)
    dims = set(las.point_format.dimension_names)
    out = {
        "path": path,
        "header_count": int(las.header.point_count),
        "point_count": int(len(las.points)),
        "point_format": int(las.header.point_format.id),
        "version": str(las.header.version),
    }
    try:
        crs = las.header.parse_crs()
    except Exception as e:  # noqa: BLE001 - pyproj raises many kinds
        crs = None
        out["crs_error"] = str(e)
    out["has_crs"] = crs is not None
    out["epsg"] = None
    if crs is not None:
        horizontal = crs.sub_crs_list[0] if crs.is_compound else crs
        out["epsg"] = horizontal.to_epsg(min_confidence=70)
        out["crs_name"] = horizontal.name
    d = {
        "x": digest(las.x, "<f8"),
        "y": digest(las.y, "<f8"),
        "z": digest(las.z, "<f8"),
        "intensity": digest(las.intensity, "<u2"),
        "return_number": digest(las.return_number, "u1"),
        "number_of_returns": digest(las.number_of_returns, "u1"),
        "classification": digest(las.classification, "u1"),
        "user_data": digest(las.user_data, "u1"),
        "point_source_id": digest(las.point_source_id, "<u2"),
    }
    if "gps_time" in dims:
        d["gps_time"] = digest(las.gps_time, "<f8")
    if "red" in dims:
        for c in ("red", "green", "blue"):
            d[c] = digest(las[c], "<u2")
    out["digests"] = d
    print(json.dumps(out))
