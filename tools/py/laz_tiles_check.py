#!/usr/bin/env python3
"""Reads every .laz file of a folder with laspy (+lazrs) and prints one JSON object: per file
its point count, the header's count, x/y/z min and max of the points, and the EPSG code of
the file's CRS as pyproj identifies it.

usage: laz_tiles_check.py DIR
"""
import json
import pathlib
import sys

import laspy


def main():
    out = {}
    for path in sorted(pathlib.Path(sys.argv[1]).glob("*.laz")):
        las = laspy.read(path)
        crs = las.header.parse_crs()
        out[path.name] = {
            "points": len(las.points),
            "header_points": las.header.point_count,
            "min": [float(las.x.min()), float(las.y.min()), float(las.z.min())],
            "max": [float(las.x.max()), float(las.y.max()), float(las.z.max())],
            "epsg": crs.to_epsg() if crs is not None else None,
            "version": str(las.header.version),
            "point_format": las.header.point_format.id,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
