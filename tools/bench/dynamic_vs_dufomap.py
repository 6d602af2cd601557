#!/usr/bin/env python3
"""Our dynamic-object removal (`hdmap clean`) and DUFOMap (PyPI `dufomap`, KTH) side by side on
the same scans, scored against the same ground truth (SA / DA / AA, KTH DynamicMap_Benchmark
definitions), with time per scan, on this machine in one run.

The scans are a registered drive (`hdmap register` output: cloud.laz, trajectory.csv,
cloud_source.bin) of a simulated drive whose `labels/` hold per-point SemanticKITTI labels
(moving classes = dynamic). `hdmap clean --benchmark-dump` writes the very scans it cleans in the
DynamicMap_Benchmark layout and the truth per point in the same order; dufomap_run.py runs
DUFOMap on that folder.

With `--model WEIGHTS --drive DRIVE_DIR`, ours is the free-space check fused with the
segmentation model (parked cars kept, as the benchmark counts them static); the table then also
has the free-space check alone (a second `hdmap clean` without the model) and the model alone
(every movable point removed), and the model's IoU per class. Our time per scan is the model's
(reading the raw scan included) plus the free-space check's (traced for the model's candidates).

usage: dynamic_vs_dufomap.py HDMAP_BINARY REGISTER_DIR LABELS_DIR WORK_DIR [--threads 2]
                             [--model WEIGHTS --drive DRIVE_DIR]
prints a Markdown table and one JSON line.
"""
import json
import pathlib
import re
import subprocess
import sys
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def score(removed, truth):
    removed = removed.astype(bool)
    truth = truth.astype(bool)
    static = ~truth
    sa = 100.0 * np.count_nonzero(static & ~removed) / max(np.count_nonzero(static), 1)
    da = 100.0 * np.count_nonzero(truth & removed) / max(np.count_nonzero(truth), 1)
    return {"sa": sa, "da": da, "aa": (sa * da) ** 0.5,
            "static_points": int(np.count_nonzero(static)), "dynamic_points": int(np.count_nonzero(truth))}


def main():
    args = sys.argv[1:]
    threads = "2"
    if "--threads" in args:
        i = args.index("--threads")
        threads = args[i + 1]
        del args[i:i + 2]
    model = drive = None
    if "--model" in args:
        i = args.index("--model")
        if "--drive" not in args:
            raise SystemExit("--model needs --drive DRIVE_DIR (the raw scans the model labels)")
        model, drive = args[i + 1], args[args.index("--drive") + 1]
        del args[i:i + 2]
        j = args.index("--drive")
        del args[j:j + 2]
    hdmap, register, labels, work = args
    work = pathlib.Path(work)
    work.mkdir(parents=True, exist_ok=True)
    ours_dir, bench = work / "ours", work / "bench"
    env = {"RAYON_NUM_THREADS": threads}
    import os
    env = {**os.environ, **env}
    t0 = time.time()
    cmd = [hdmap, "clean", "--scans", register, "--out", str(ours_dir),
           "--benchmark-dump", str(bench), "--truth-labels", labels]
    if model:
        cfg = work / "clean_keep_parked.toml"
        cfg.write_text("[model]\nkeep_parked = true\n")
        cmd += ["--model", model, "--drive", drive, "--config", str(cfg)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise SystemExit(f"hdmap clean failed: {r.stderr}")
    wall = time.time() - t0
    m = re.search(r"over (\d+) scans \(([\d.]+) ms per scan", r.stdout)
    scans, vis_ms = int(m.group(1)), float(m.group(2))
    m = re.search(r"model ([\d.]+) ms per scan", r.stdout)
    model_ms = float(m.group(1)) if m else 0.0
    ours_ms = vis_ms + model_ms
    truth = np.fromfile(bench / "truth_dynamic.u8", dtype=np.uint8)
    # Removed: SeenEmpty (1), MovingObject (3), ParkedRemoved (4).
    reasons = np.fromfile(ours_dir / "reasons.u8", dtype=np.uint8)
    ours = np.isin(reasons, [1, 3, 4])
    ours_s = score(ours, truth)
    own_scores = json.loads((ours_dir / "scores.json").read_text())
    methods = {name: s for name, s in own_scores["methods"]}
    if model:
        # The free-space check alone: the same clean without the model.
        vis_dir = work / "visibility_alone"
        r = subprocess.run([hdmap, "clean", "--scans", register, "--out", str(vis_dir)],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise SystemExit(f"hdmap clean (no model) failed: {r.stderr}")
        m = re.search(r"over \d+ scans \(([\d.]+) ms per scan", r.stdout)
        alone = np.isin(np.fromfile(vis_dir / "reasons.u8", dtype=np.uint8), [1, 3, 4])
        methods["visibility"] = {**score(alone, truth), "ms_per_scan": float(m.group(1))}

    # DUFOMap at its default voxel (0.1 m) and at ours (0.2 m).
    dufo_runs = []
    for voxel in ("0.1", "0.2"):
        npy = work / f"dufomap_{voxel}.npy"
        r = subprocess.run([sys.executable, str(HERE / "dufomap_run.py"), str(bench), "--out", str(npy),
                            "--threads", threads, "--voxel-size", voxel], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"dufomap_run.py failed: {r.stderr[-2000:]}")
        info = json.loads(r.stdout.strip().splitlines()[-1])
        dufo = np.load(npy)
        if dufo.shape != truth.shape:
            raise SystemExit(f"DUFOMap labelled {dufo.shape} points, truth has {truth.shape}")
        dufo_runs.append((voxel, score(dufo, truth), info))

    print(f"{scans} scans, {len(truth)} points ({ours_s['dynamic_points']} truly dynamic), {threads} threads")
    print("| method | SA % | DA % | AA % | ms / scan |")
    print("|---|---|---|---|---|")
    if model:
        v, mo = methods["visibility"], methods["model"]
        print(f"| hdmap: free space alone (voxel 0.2 m) | {v['sa']:.2f} | {v['da']:.2f} | {v['aa']:.2f} | {v['ms_per_scan']:.1f} |")
        print(f"| hdmap: model alone (every movable point) | {mo['sa']:.2f} | {mo['da']:.2f} | {mo['aa']:.2f} | {model_ms:.1f} |")
        print(f"| **hdmap clean: model + free space** | {ours_s['sa']:.2f} | {ours_s['da']:.2f} | {ours_s['aa']:.2f} | {ours_ms:.1f} |")
    else:
        print(f"| hdmap clean (free space, voxel 0.2 m) | {ours_s['sa']:.2f} | {ours_s['da']:.2f} | {ours_s['aa']:.2f} | {ours_ms:.1f} |")
    for voxel, d, info in dufo_runs:
        print(f"| DUFOMap 1.1.1 (voxel {voxel} m) | {d['sa']:.2f} | {d['da']:.2f} | {d['aa']:.2f} | {info['ms_per_scan']:.1f} |")
    if own_scores.get("class_iou"):
        print("model IoU % per class: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in own_scores["class_iou"] if v is not None and v == v))
    print(json.dumps({"scans": scans, "points": int(len(truth)), "ours": {**ours_s, "ms_per_scan": ours_ms, "wall_s": wall},
                      "ours_methods": methods, "class_iou": own_scores.get("class_iou"),
                      "dufomap": [{**d, "voxel_m": float(v), "ms_per_scan": i["ms_per_scan"], "params": i["params"]}
                                  for v, d, i in dufo_runs]}))

if __name__ == "__main__":
    main()
