#!/usr/bin/env python3
"""Write a tiny synthetic DynamicMap_Benchmark sequence for dufomap_run.py.

    dufomap_synthetic.py DIR [--scans 6]

Scene: ground plane z = 0, a wall x in [8, 8.5], and a 1 x 1 x 1.5 m box
that stands at (4.5, 0) for the first half of the scans and at (4.5, 5)
afterwards.  A 32-beam, 0.5 deg lidar at height 1.8 m drives along y.
Points are written in the world frame with ``VIEWPOINT tx ty tz qw qx qy qz``
(yaw changes per scan), alternating binary float32 / ascii float64 PCDs so
both reader paths are used.  Also writes DIR/gt_class.npy (uint8 per point,
all scans in file order: 0 ground, 1 wall, 2 box at its first place,
3 box at its second place).  Expected DUFOMap result: class 2 mostly
dynamic, classes 0, 1 and 3 static.
"""

import argparse
import os

import numpy as np


def _raycast(origin, dirs, boxes):
    t_best = np.full(len(dirs), np.inf)
    lab = np.full(len(dirs), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -origin[2] / dirs[:, 2]
        ok = np.isfinite(t) & (t > 0)
        t_best[ok] = t[ok]
        lab[ok] = 0
        for cls, lo, hi in boxes:
            t1 = (lo - origin) / dirs
            t2 = (hi - origin) / dirs
            tmin = np.nanmax(np.minimum(t1, t2), axis=1)
            tmax = np.nanmin(np.maximum(t1, t2), axis=1)
            hit = (tmax >= tmin) & (tmin > 0) & (tmin < t_best)
            t_best[hit] = tmin[hit]
            lab[hit] = cls
    return t_best, lab


def scan(origin, boxes, max_range=30.0):
    az = np.deg2rad(np.arange(0.0, 360.0, 0.5))
    el = np.deg2rad(np.linspace(-25.0, 15.0, 32))
    a, e = np.meshgrid(az, el)
    d = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1).reshape(-1, 3)
    t, lab = _raycast(origin, d, boxes)
    k = np.isfinite(t) & (t < max_range)
    return origin + d[k] * t[k, None], lab[k]


def write_pcd(path, xyz, viewpoint, binary, dtype):
    size = np.dtype(dtype).itemsize
    head = (
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z\n"
        f"SIZE {size} {size} {size}\nTYPE F F F\nCOUNT 1 1 1\nWIDTH {len(xyz)}\nHEIGHT 1\n"
        f"VIEWPOINT {' '.join(repr(float(v)) for v in viewpoint)}\nPOINTS {len(xyz)}\n"
        f"DATA {'binary' if binary else 'ascii'}\n"
    )
    with open(path, "wb") as f:
        f.write(head.encode())
        if binary:
            f.write(np.ascontiguousarray(xyz, dtype="<" + np.dtype(dtype).str[1:]).tobytes())
        else:
            f.write("".join(f"{x!r} {y!r} {z!r}\n" for x, y, z in xyz.astype(dtype).tolist()).encode())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--scans", type=int, default=6)
    args = ap.parse_args()
    os.makedirs(os.path.join(args.dir, "pcd"), exist_ok=True)
    wall = (1, np.array([8.0, -10.0, 0.0]), np.array([8.5, 10.0, 3.0]))
    box_a = (2, np.array([4.0, -0.5, 0.0]), np.array([5.0, 0.5, 1.5]))
    box_b = (3, np.array([4.0, 4.5, 0.0]), np.array([5.0, 5.5, 1.5]))
    classes = []
    for i in range(args.scans):
        origin = np.array([0.0, -3.0 + i, 1.8])
        xyz, lab = scan(origin, [wall, box_a if i < args.scans // 2 else box_b])
        yaw = 0.3 * i
        vp = [*origin, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        binary = i % 2 == 0
        write_pcd(os.path.join(args.dir, "pcd", f"{i:06d}.pcd"), xyz, vp, binary,
                  np.float32 if binary else np.float64)
        classes.append(lab.astype(np.uint8))
    np.save(os.path.join(args.dir, "gt_class.npy"), np.concatenate(classes))


if __name__ == "__main__":
    main()
