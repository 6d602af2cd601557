#!/usr/bin/env python3
"""Reference for the map frame: reads lines "x y" in EPSG:SRC from POINTS_FILE and prints the
same points in UTM EPSG:UTM minus the UTM coordinates of the origin (what Lanelet2's
UtmProjector and Autoware's LocalCartesianUTM compute), computed with pyproj.

usage: utm_local.py SRC_EPSG UTM_EPSG ORIGIN_X ORIGIN_Y POINTS_FILE
"""
import sys

from pyproj import Transformer


def main():
    src, utm, ox, oy, path = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    t = Transformer.from_crs(src, utm, always_xy=True)
    e0, n0 = t.transform(ox, oy)
    for line in open(path):
        if line.strip():
            x, y = map(float, line.split())
            e, n = t.transform(x, y)
            print(f"{e - e0:.6f} {n - n0:.6f}")


if __name__ == "__main__":
    main()
