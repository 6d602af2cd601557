#!/usr/bin/env python3
"""small_gicp on the very clouds our GICP aligned (`gicp_pairs --dump DIR`), side by side.

`time DIR REPEAT` times small_gicp on a dump right after our run wrote it; `summary DIR...`
prints the table over alternating rounds (the machine's speed drifts between runs).

Same points, same initial guess, same voxel size, neighbours, correspondence distance,
iteration cap, stopping rule and thread count; each timing is the median of REPEAT runs of
voxel grid + covariances + kd-tree + alignment. Errors are measured against each pair's
reference (exact for the moved-copy pair; our pair calibration / the authors' extrinsic for
the lidar2lidar pairs), plus the difference between the two tools' results.
Prints the markdown table recorded in BENCHMARK.md.
"""
import json
import statistics
import sys
import time

import numpy as np
import small_gicp


def diff(a, b):
    d = np.linalg.inv(a) @ b
    c = np.clip((np.trace(d[:3, :3]) - 1) / 2, -1, 1)
    return np.degrees(np.arccos(c)), 100 * np.linalg.norm(d[:3, 3])


def time_theirs(d, repeat):
    """Times small_gicp on every pair of dump `d`; writes d/theirs.json."""
    m = json.load(open(f"{d}/manifest.json"))
    threads = m["threads"]
    out = []
    for p in m["pairs"]:
        i = p["index"]
        tgt = np.fromfile(f"{d}/{i}_target.f64").reshape(-1, 3)
        src = np.fromfile(f"{d}/{i}_source.f64").reshape(-1, 3)
        times = []
        res = None
        for _ in range(repeat):
            t0 = time.perf_counter()
            t_pc, t_tree = small_gicp.preprocess_points(tgt, downsampling_resolution=m["voxel_m"],
                                                        num_neighbors=m["k_neighbours"], num_threads=threads)
            s_pc, _ = small_gicp.preprocess_points(src, downsampling_resolution=m["voxel_m"],
                                                   num_neighbors=m["k_neighbours"], num_threads=threads)
            res = small_gicp.align(t_pc, s_pc, t_tree, init_T_target_source=np.array(p["init"]),
                                   registration_type="GICP", max_correspondence_distance=m["max_correspondence_m"],
                                   num_threads=threads, max_iterations=m["max_iterations"])
            times.append(time.perf_counter() - t0)
        out.append({"time_s": statistics.median(times), "T": res.T_target_source.tolist(),
                    "points": [len(tgt), len(src)]})
    json.dump(out, open(f"{d}/theirs.json", "w"))


def summarize(dirs):
    """One table over rounds `dirs` (ours, then small_gicp, per round): median times."""
    ms = [json.load(open(f"{d}/manifest.json")) for d in dirs]
    th = [json.load(open(f"{d}/theirs.json")) for d in dirs]
    m = ms[0]
    print(f"voxel {m['voxel_m']} m, {m['k_neighbours']} neighbours, correspondences ≤ {m['max_correspondence_m']} m, "
          f"≤ {m['max_iterations']} iterations, {m['threads']} threads; {len(dirs)} alternating rounds "
          "(ours, small_gicp), each time the median of its round\n")
    print("| pair | points (target / source) | ours ms | small_gicp ms | time ratio ours/theirs "
          "| ours vs reference °/cm | small_gicp vs reference °/cm | ours vs small_gicp °/cm |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for k, p in enumerate(m["pairs"]):
        ours = statistics.median(r["pairs"][k]["ours"]["time_s"] for r in ms)
        theirs = statistics.median(t[k]["time_s"] for t in th)
        ratios.append(ours / theirs)
        ref = np.array(p["reference"])
        t_ours = np.array(p["ours"]["T"])
        t_theirs = np.array(th[0][k]["T"])
        e_o, e_t, e_x = diff(ref, t_ours), diff(ref, t_theirs), diff(t_ours, t_theirs)
        tag = "" if p["reference_exact"] else " *"
        n = th[0][k]["points"]
        print(f"| {p['pair']}{tag} | {n[0]} / {n[1]} | {1000 * ours:.0f} | {1000 * theirs:.0f} | "
              f"{ours / theirs:.2f} | {e_o[0]:.3f} / {e_o[1]:.2f} | {e_t[0]:.3f} / {e_t[1]:.2f} | "
              f"{e_x[0]:.3f} / {e_x[1]:.2f} |")
    g = float(np.exp(np.mean(np.log(ratios))))
    print(f"\nGeometric mean time ratio ours/small_gicp: {g:.2f} (< 1: ours faster). "
          "* reference is an estimate (our calibration or the authors' extrinsic), not ground truth.")


if __name__ == "__main__":
    if sys.argv[1] == "time":
        time_theirs(sys.argv[2], int(sys.argv[3]))
    else:
        summarize(sys.argv[2:])
