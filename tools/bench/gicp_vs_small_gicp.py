#!/usr/bin/env python3
"""small_gicp on the very clouds our GICP aligned (`gicp_pairs --dump DIR`), side by side.

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


def main():
    d = sys.argv[1]
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    m = json.load(open(f"{d}/manifest.json"))
    threads = m["threads"]
    print(f"voxel {m['voxel_m']} m, {m['k_neighbours']} neighbours, correspondences ≤ {m['max_correspondence_m']} m, "
          f"≤ {m['max_iterations']} iterations, {threads} threads\n")
    print("| pair | points (target / source) | ours ms | small_gicp ms | time ratio ours/theirs "
          "| ours vs reference °/cm | small_gicp vs reference °/cm | ours vs small_gicp °/cm |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for p in m["pairs"]:
        i = p["index"]
        tgt = np.fromfile(f"{d}/{i}_target.f64").reshape(-1, 3)
        src = np.fromfile(f"{d}/{i}_source.f64").reshape(-1, 3)
        init = np.array(p["init"])
        ref = np.array(p["reference"])
        times = []
        res = None
        for _ in range(repeat):
            t0 = time.perf_counter()
            t_pc, t_tree = small_gicp.preprocess_points(tgt, downsampling_resolution=m["voxel_m"],
                                                        num_neighbors=m["k_neighbours"], num_threads=threads)
            s_pc, _ = small_gicp.preprocess_points(src, downsampling_resolution=m["voxel_m"],
                                                   num_neighbors=m["k_neighbours"], num_threads=threads)
            res = small_gicp.align(t_pc, s_pc, t_tree, init_T_target_source=init, registration_type="GICP",
                                   max_correspondence_distance=m["max_correspondence_m"], num_threads=threads,
                                   max_iterations=m["max_iterations"])
            times.append(time.perf_counter() - t0)
        theirs = statistics.median(times)
        ours = p["ours"]["time_s"]
        ratios.append(ours / theirs)
        t_ours = np.array(p["ours"]["T"])
        t_theirs = res.T_target_source
        e_o = diff(ref, t_ours)
        e_t = diff(ref, t_theirs)
        e_x = diff(t_ours, t_theirs)
        tag = "" if p["reference_exact"] else " *"
        print(f"| {p['pair']}{tag} | {len(tgt)} / {len(src)} | {1000 * ours:.0f} | {1000 * theirs:.0f} | "
              f"{ours / theirs:.2f} | {e_o[0]:.3f} / {e_o[1]:.2f} | {e_t[0]:.3f} / {e_t[1]:.2f} | "
              f"{e_x[0]:.3f} / {e_x[1]:.2f} |")
    g = float(np.exp(np.mean(np.log(ratios))))
    print(f"\nGeometric mean time ratio ours/small_gicp: {g:.2f} (< 1: ours faster). "
          "* reference is an estimate (our calibration or the authors' extrinsic), not ground truth.")


if __name__ == "__main__":
    main()
