#!/usr/bin/env python3
"""Reads vector files with GDAL's `ogrinfo` (Debian gdal-bin: the command-line tool, not our
reader) and prints one JSON object per file: layers with feature count, geometry type, CRS
name and fields (from `ogrinfo -so`), and, with --features, every feature's attributes and
vertices, the vertices reprojected by pyproj to EPSG:TO_EPSG (an independent projection).

usage: ngii_check.py [--features TO_EPSG] FILE...
"""
import json
import re
import subprocess
import sys

from pyproj import Transformer


def ogrinfo(*args):
    r = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"ogrinfo {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def summary(path):
    layers = {}
    current = None
    for line in ogrinfo("-al", "-so", path).splitlines():
        m = re.match(r"^Layer name: (.+)$", line)
        if m:
            current = {"fields": {}}
            layers[m.group(1).strip()] = current
            continue
        if current is None:
            continue
        if line.startswith("Geometry: "):
            current["geometry"] = line[len("Geometry: "):].strip()
        elif line.startswith("Feature Count: "):
            current["feature_count"] = int(line.split(":")[1])
        elif m := re.match(r'^\s*PROJCRS\["([^"]+)"', line):
            current["crs"] = m.group(1)
        elif m := re.match(r"^(\w+): (\w+) \(", line):
            current["fields"][m.group(1)] = m.group(2)
    return layers


def coords(wkt):
    nums = re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", wkt.split("(", 1)[1])
    vals = [float(v) for v in nums]
    return [vals[i:i + 3] for i in range(0, len(vals), 3)]


def features(path, to_epsg, from_epsg):
    tr = Transformer.from_crs(from_epsg, to_epsg, always_xy=True)
    out = []
    feat = None
    for line in ogrinfo("-al", "-q", path).splitlines():
        if line.startswith("OGRFeature("):
            feat = {"attrs": {}, "coords": []}
            out.append(feat)
        elif feat is not None and (m := re.match(r"^\s+(\w+) \((\w+)\) = (.*)$", line)):
            feat["attrs"][m.group(1)] = m.group(3)
        elif feat is not None and re.match(r"^\s*(POINT|LINESTRING|POLYGON)", line):
            pts = coords(line.strip())
            xs, ys = tr.transform([p[0] for p in pts], [p[1] for p in pts])
            feat["coords"] = [[x, y, p[2]] for x, y, p in zip(xs, ys, pts)]
    return out


def main():
    argv = sys.argv[1:]
    to_epsg = None
    if argv and argv[0] == "--features":
        to_epsg = int(argv[1])
        argv = argv[2:]
    result = {}
    for path in argv:
        entry = {"layers": summary(path)}
        if to_epsg is not None:
            # The shapefile's own CRS, as pyproj reads its .prj.
            from pyproj import CRS
            prj = open(path[:-4] + ".prj").read()
            entry["prj_epsg"] = CRS.from_wkt(prj).to_epsg()
            entry["features"] = features(path, to_epsg, CRS.from_wkt(prj))
        result[path] = entry
    print(json.dumps(result))


if __name__ == "__main__":
    main()
