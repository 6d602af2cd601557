#!/usr/bin/env python3
"""Run the reference DUFOMap (PyPI ``dufomap==1.1.1``, KTH) on a scan sequence
in the KTH DynamicMap_Benchmark layout and label every input point.

Usage::

    dufomap_run.py DIR --out OUT.npy [--voxel-size 0.1] [--d-s 0.2] [--d-p 1]
                   [--threads 2] [--min-range 0.2] [--max-range -1]
                   [--no-hit-extension] [--ray-passthrough-hits]

Input: ``DIR/pcd/*.pcd`` read in name order (000000.pcd, 000001.pcd, ...).
Each PCD holds x y z (float32 or float64; other fields are ignored) in the
WORLD / local map frame, and the sensor pose in the header as
``VIEWPOINT tx ty tz qw qx qy qz``.  ASCII and binary PCD are supported
(binary_compressed is not).  A file without VIEWPOINT is an error, because
the sensor position is the ray origin.

Output: ``OUT.npy`` -- uint8 array, one entry per input point, all scans
concatenated in file order (points in file order inside a scan):
1 = dynamic, 0 = static.  One JSON line on stdout:
``{"scans", "points", "dynamic", "seconds_integrate", "seconds_total",
"ms_per_scan", "params", ...}``.  ``seconds_integrate`` covers the
``run()`` calls, ``seconds_total`` covers ``run()`` + the final propagation
+ classification of all points; ``ms_per_scan = 1000 * seconds_total /
scans``.  File reading and numpy conversions are outside both timers.
DUFOMap's own log (glog, "Here is your dufomap config") goes to stderr.

How DUFOMap's Python API is called (dufomap 1.1.1; the nanobind source of
``dufomap_bind`` is not published, this is from the wrapper
``site-packages/dufomap/__init__.py``, the binding signatures, the
authors' ``main.py`` in github.com/KTH-RPL/dufomap and the C++ CLI
``dufomap.cpp``, and checked on synthetic data):

* ``m = dufomap.dufomap(resolution, d_s, d_p, num_threads=0,
  hit_extension=True, ray_passthrough_hits=False)``.
  ``resolution`` = voxel size v; ``d_s`` = ``inflate_hits_dist`` (metres,
  float); ``d_p`` = ``inflate_unknown`` (voxels, unsigned int);
  ``num_threads`` 0 = automatic.  The binding exposes no other parameter
  (down-sampling method, max_range, inflate_unknown_compensation and the
  octree depth are fixed inside it).
* ``m.run(points_Nx3_float32, pose, cloud_transform)`` integrates one scan.
  ``pose`` must be a Python LIST ``[tx, ty, tz, qw, qx, qy, qz]`` or a 4x4
  numpy matrix -- a numpy array of shape (7,) is rejected by
  ``pose_check``.  The pose translation is always the ray origin.  With
  ``cloud_transform=True`` the points are taken in the sensor frame and
  moved by the pose; here they are already in the world frame, so
  ``cloud_transform=False`` (what the authors' ``main.py`` does with
  DynamicMap_Benchmark PCDs) and only the translation of VIEWPOINT matters.
* ``m.oncePropagateCluster(if_propagate=True, if_cluster=False)`` once after
  the last scan (the map is not propagated during ``run()``); clustering
  is off, as in the default config.
* ``m.segment(points, pose, cloud_transform=False)`` returns, for each
  point, whether its voxel is "seen free" in the final map (1 = dynamic).
  This is the same test the benchmark output uses: the C++ CLI and
  ``outputMap`` keep a point in the cleaned map iff ``!map.seenFree(p)``.
  All points of all scans are classified in a single ``segment`` call
  after the whole sequence is integrated (offline / batch DUFOMap, not a
  causal per-scan labelling).

Parameters and defaults follow DUFOMap's default config
(``assets/config.toml``): resolution 0.1, inflate_unknown (d_p) 1,
inflate_hits_dist (d_s) 0.2, min_range 0.2, max_range -1 (no limit),
ray_passthrough_hits false.  (The authors' ``main.py`` passes d_p = 2;
give ``--d-p 2`` to match it.)  ``--threads`` defaults to 2 here.

Range limits are not in the binding, so they are applied here before
``run()``, the way the C++ CLI applies min_range (it drops points closer
than min_range to the sensor before inserting the scan).  Points removed
this way are still classified like every other point.  ``--max-range``
> 0 likewise drops farther points from integration (UFO's own max_range
would instead shorten their rays; off by default, as in the config).
Points with non-finite coordinates are neither integrated nor
classified; they get label 0 and are counted in ``"nonfinite"``.

Caveats found while checking the package:

* Points are converted to float32 by the wrapper, so use a local map frame
  (not UTM-sized coordinates).  The octree covers only about
  +-(voxel_size * 2**18) metres around the origin (about 26.2 km at
  0.1 m); beyond that the binding crashes or hangs, so this script stops
  with an error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

_PCD_TYPES = {
    ("F", 4): "<f4", ("F", 8): "<f8",
    ("I", 1): "<i1", ("I", 2): "<i2", ("I", 4): "<i4", ("I", 8): "<i8",
    ("U", 1): "<u1", ("U", 2): "<u2", ("U", 4): "<u4", ("U", 8): "<u8",
}


def read_pcd(path):
    """Returns (xyz float64 (N,3), viewpoint list of 7 floats)."""
    with open(path, "rb") as f:
        raw = f.read()
    header = {}
    pos = 0
    while True:
        end = raw.find(b"\n", pos)
        if end < 0:
            raise ValueError(f"{path}: truncated PCD header")
        line = raw[pos:end].decode("ascii", "replace").strip()
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, _, rest = line.partition(" ")
        header[key.upper()] = rest.split()
        if key.upper() == "DATA":
            break
    fields = header["FIELDS"]
    sizes = [int(s) for s in header["SIZE"]]
    types = header["TYPE"]
    counts = [int(c) for c in header.get("COUNT", ["1"] * len(fields))]
    if "POINTS" in header:
        npts = int(header["POINTS"][0])
    else:
        npts = int(header["WIDTH"][0]) * int(header.get("HEIGHT", ["1"])[0])
    if "VIEWPOINT" not in header:
        raise ValueError(f"{path}: no VIEWPOINT line (sensor pose) in the PCD header")
    viewpoint = [float(v) for v in header["VIEWPOINT"]]
    if len(viewpoint) != 7:
        raise ValueError(f"{path}: VIEWPOINT must have 7 numbers")
    for name in ("x", "y", "z"):
        if name not in fields:
            raise ValueError(f"{path}: field {name} missing")
    mode = header["DATA"][0].lower()
    if mode == "ascii":
        ncols = sum(counts)
        vals = np.array(raw[pos:].split(), dtype=np.float64)
        if vals.size != npts * ncols:
            raise ValueError(f"{path}: expected {npts}x{ncols} values, got {vals.size}")
        vals = vals.reshape(npts, ncols)
        offsets = np.cumsum([0] + counts[:-1])
        xyz = np.stack([vals[:, offsets[fields.index(n)]] for n in "xyz"], axis=1)
    elif mode == "binary":
        dtype = np.dtype([
            (f"f{i}_{n}", _PCD_TYPES[(t.upper(), s)], (c,) if c > 1 else ())
            for i, (n, s, t, c) in enumerate(zip(fields, sizes, types, counts))
        ])
        rec = np.frombuffer(raw, dtype=dtype, count=npts, offset=pos)
        xyz = np.stack([rec[f"f{fields.index(n)}_{n}"].astype(np.float64) for n in "xyz"], axis=1)
    else:
        raise ValueError(f"{path}: DATA {mode} not supported (ascii or binary only)")
    return xyz, viewpoint


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", help="folder holding pcd/000000.pcd ...")
    ap.add_argument("--out", required=True, help="output .npy (uint8 per point, 1 = dynamic)")
    ap.add_argument("--voxel-size", type=float, default=0.1, help="resolution v (m), default 0.1")
    ap.add_argument("--d-s", type=float, default=0.2, help="inflate_hits_dist d_s (m), default 0.2")
    ap.add_argument("--d-p", type=int, default=1, help="inflate_unknown d_p (voxels), default 1")
    ap.add_argument("--threads", type=int, default=2, help="DUFOMap num_threads (0 = auto), default 2")
    ap.add_argument("--min-range", type=float, default=0.2,
                    help="drop points closer than this to the sensor from integration, default 0.2")
    ap.add_argument("--max-range", type=float, default=-1.0,
                    help="drop points farther than this from integration; <= 0: no limit (default)")
    ap.add_argument("--no-hit-extension", action="store_true", help="hit_extension=False")
    ap.add_argument("--ray-passthrough-hits", action="store_true", help="ray_passthrough_hits=True")
    args = ap.parse_args(argv)

    pcd_dir = os.path.join(args.dir, "pcd")
    names = sorted(n for n in os.listdir(pcd_dir) if n.endswith(".pcd"))
    if not names:
        raise SystemExit(f"no .pcd files in {pcd_dir}")

    # --- read (not timed) ---
    scans, origins, integ = [], [], []
    for n in names:
        xyz, vp = read_pcd(os.path.join(pcd_dir, n))
        scans.append(xyz)
        origins.append(vp)
        finite = np.isfinite(xyz).all(axis=1)
        d = np.linalg.norm(xyz - np.asarray(vp[:3]), axis=1)
        keep = finite & (d >= args.min_range)
        if args.max_range > 0:
            keep &= d <= args.max_range
        integ.append(np.ascontiguousarray(xyz[keep], dtype=np.float32))
    all_xyz = np.concatenate(scans, axis=0)
    finite_all = np.isfinite(all_xyz).all(axis=1)
    query = np.ascontiguousarray(all_xyz[finite_all], dtype=np.float32)

    half_extent = args.voxel_size * 2 ** 18
    extent = max(float(np.abs(query).max()) if len(query) else 0.0,
                 max(abs(v) for vp in origins for v in vp[:3]))
    if extent >= half_extent:
        raise SystemExit(f"coordinates reach {extent:.1f} m; DUFOMap's map only spans "
                         f"+-{half_extent:.1f} m at voxel size {args.voxel_size}; "
                         "shift the data into a local frame")

    from dufomap import dufomap  # imported late: keeps --help fast

    params = {
        "resolution": args.voxel_size, "d_s": args.d_s, "d_p": args.d_p,
        "num_threads": args.threads, "hit_extension": not args.no_hit_extension,
        "ray_passthrough_hits": args.ray_passthrough_hits,
        "min_range": args.min_range, "max_range": args.max_range,
        "cloud_transform": False, "propagate": True, "cluster": False,
        "dufomap_version": "1.1.1",
    }
    mapper = dufomap(args.voxel_size, args.d_s, args.d_p, num_threads=args.threads,
                     hit_extension=not args.no_hit_extension,
                     ray_passthrough_hits=args.ray_passthrough_hits)
    identity = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]

    # --- integrate + classify (timed) ---
    t0 = time.perf_counter()
    for pts, vp in zip(integ, origins):
        if len(pts):
            mapper.run(pts, [float(v) for v in vp], cloud_transform=False)
    t1 = time.perf_counter()
    mapper.oncePropagateCluster(if_propagate=True, if_cluster=False)
    seg = mapper.segment(query, identity, cloud_transform=False) if len(query) else np.zeros(0, np.uint8)
    t2 = time.perf_counter()

    labels = np.zeros(len(all_xyz), dtype=np.uint8)
    labels[finite_all] = np.asarray(seg, dtype=np.uint8)
    np.save(args.out, labels)

    n = len(names)
    print(json.dumps({
        "scans": n,
        "points": int(len(labels)),
        "dynamic": int(labels.sum()),
        "integrated_points": int(sum(len(p) for p in integ)),
        "nonfinite": int((~finite_all).sum()),
        "seconds_integrate": round(t1 - t0, 6),
        "seconds_total": round(t2 - t0, 6),
        "ms_per_scan": round(1000.0 * (t2 - t0) / n, 3),
        "params": params,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
