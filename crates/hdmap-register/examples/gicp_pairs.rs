//! GICP on real LiDAR pairs: the PJLab lidar2lidar scenes (left and right LiDAR onto the top
//! one, from the given initial extrinsics; the manual p64 → qt pair from its extrinsic) and
//! consecutive lidar2imu scans (from the INS relative pose), plus a real scan against a copy
//! moved by a known transform. Prints one JSON object per pair with our result and timing
//! (median of `--repeat` runs: voxel grid + covariances + kd-tree + alignment), and with
//! `--dump DIR` writes each pair's raw points (f64 xyz, little-endian) and a manifest for
//! `tools/bench/gicp_vs_small_gicp.py`, which runs small_gicp on the very same points.
//!
//! `cargo run --release -p hdmap-register --example gicp_pairs -- [--dump DIR] [--repeat N]`

use std::path::{Path, PathBuf};
use std::time::Instant;

use hdmap_core::nalgebra::{Isometry3, Matrix4, Vector3};
use hdmap_register::gicp::{GicpCloud, GicpConfig, align, pose_difference, voxel_downsample};
use hdmap_register::pair::{PairConfig, register_pair};

/// Voxel size of both tools, m.
const VOXEL_M: f64 = 0.25;
/// Neighbours for covariances, both tools.
const K: usize = 20;

struct Pair {
    name: String,
    target: Vec<[f64; 3]>,
    source: Vec<[f64; 3]>,
    init: Isometry3<f64>,
    /// A reference `target_from_source` (the dataset's extrinsic or the known motion).
    reference: Isometry3<f64>,
    /// Whether the reference is exact (a synthetic motion) or the dataset's estimate.
    exact: bool,
}

fn read(path: &Path) -> Result<Vec<[f64; 3]>, Box<dyn std::error::Error>> {
    let f = hdmap_io::pcd::read_pcd(path)?;
    Ok(f.cloud
        .positions
        .iter()
        .filter(|p| p.iter().all(|v| v.is_finite()) && (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt() > 1.0)
        .collect())
}

fn pairs(data: &Path) -> Result<Vec<Pair>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    let l2l = data.join("pjlab_sensorscalib/lidar2lidar");
    for scene in ["0001", "0002", "0003"] {
        let dir = l2l.join("auto_calib/data").join(scene);
        let ext = hdmap_io::pjlab::read_initial_extrinsics(&dir.join("initial_extrinsic.txt"))?;
        let paths: Vec<PathBuf> = std::fs::read_to_string(dir.join("lidar_cloud_path.txt"))?
            .lines()
            .filter_map(|l| l.strip_prefix("path: "))
            .map(|p| l2l.join("auto_calib").join(p.trim()))
            .collect();
        let top = read(&paths[0])?;
        for (i, side) in [(1usize, "left"), (2, "right")] {
            // The given extrinsics are level guesses (roll = pitch = 0) of LiDARs tilted by
            // ~45°: our pair registration (ground planes, sweep, GICP) calibrates them; the
            // GICP comparison starts both tools from that result moved by 1.5° / 15 cm.
            let source = read(&paths[i])?;
            let pr = register_pair(&top, &source, &ext[i], &PairConfig::default())?;
            let (deg, m) = pose_difference(&ext[i], &pr.target_from_source);
            let (r, p, y) = pr.target_from_source.rotation.euler_angles();
            let t = pr.target_from_source.translation.vector;
            eprintln!(
                "{scene} {side}→top: rpy {:.2} {:.2} {:.2}° t {:.3} {:.3} {:.3} m (sweep {:+.0}°, overlap {:.3}); vs the given guess {deg:.2}° {:.1} cm",
                r.to_degrees(),
                p.to_degrees(),
                y.to_degrees(),
                t.x,
                t.y,
                t.z,
                pr.sweep_deg,
                pr.overlap,
                100.0 * m
            );
            let nudge = Isometry3::new(Vector3::new(0.1, -0.1, 0.05), Vector3::new(0.015, -0.01, 0.02));
            out.push(Pair {
                name: format!("lidar2lidar {scene} {side}→top"),
                target: top.clone(),
                source,
                init: pr.target_from_source * nudge,
                reference: pr.target_from_source,
                exact: false,
            });
        }
    }
    let m = l2l.join("manual_calib/data");
    let qt_from_p64 = hdmap_io::pjlab::read_extrinsic_json(&m.join("p64-to-qt-extrinsic.json"))?;
    out.push(Pair {
        name: "lidar2lidar manual p64→qt".into(),
        target: read(&m.join("qt.pcd"))?,
        source: read(&m.join("p64.pcd"))?,
        init: qt_from_p64,
        reference: qt_from_p64,
        exact: false,
    });
    // A real scan against itself moved by a known transform, 2 cm noise (seeded).
    let scan =
        read(&data.join("pjlab_sensorscalib/lidar2imu_seq/top_center_lidar/2021-10-26-16-21-29-468.pcd"))?;
    let t_ts = Isometry3::new(Vector3::new(-0.8, 0.5, 0.1), Vector3::new(-0.01, 0.012, -0.09));
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = || {
        // xorshift64*, mapped to a symmetric triangle distribution of ±2 cm.
        let mut u = || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        };
        0.02 * (u() + u() - 1.0)
    };
    let inv = t_ts.inverse();
    let moved: Vec<[f64; 3]> = scan
        .iter()
        .map(|p| {
            let q = inv * hdmap_core::nalgebra::Point3::from(*p);
            [q.x + noise(), q.y + noise(), q.z + noise()]
        })
        .collect();
    out.push(Pair {
        name: "lidar2imu scan vs moved copy (known)".into(),
        target: scan,
        source: moved,
        init: Isometry3::identity(),
        reference: t_ts,
        exact: true,
    });
    Ok(out)
}

/// Our result: pose, iterations, converged, inliers.
type OursResult = (Isometry3<f64>, usize, bool, usize);

fn run_ours(p: &Pair, cfg: &GicpConfig) -> Result<OursResult, Box<dyn std::error::Error>> {
    let target = GicpCloud::new(voxel_downsample(&p.target, VOXEL_M), K)?;
    let source = GicpCloud::new(voxel_downsample(&p.source, VOXEL_M), K)?;
    let r = align(&target, &source, &p.init, cfg);
    Ok((r.target_from_source, r.iterations, r.converged, r.inliers))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |f: &str| args.iter().position(|a| a == f).and_then(|i| args.get(i + 1)).cloned();
    let repeat: usize = flag("--repeat").map(|v| v.parse()).transpose()?.unwrap_or(5);
    let dump = flag("--dump").map(PathBuf::from);
    let data = hdmap_io::testdata::repo_root().join("../shared/data");
    // small_gicp's default stopping rule and iteration cap, for both tools.
    let cfg = GicpConfig {
        max_iterations: 20,
        rotation_eps_rad: 0.1f64.to_radians(),
        translation_eps_m: 1e-3,
        ..GicpConfig::default()
    };
    let mut manifest = Vec::new();
    for (n, p) in pairs(&data)?.iter().enumerate() {
        let mut times = Vec::new();
        let mut result = None;
        for _ in 0..repeat.max(1) {
            let t0 = Instant::now();
            let r = run_ours(p, &cfg)?;
            times.push(t0.elapsed().as_secs_f64());
            result = Some(r);
        }
        times.sort_by(f64::total_cmp);
        let (t, iterations, converged, inliers) = result.ok_or("no run")?;
        let (deg, m) = pose_difference(&p.reference, &t);
        let tm = t.to_homogeneous();
        let row = serde_json::json!({
            "pair": p.name, "target_points": p.target.len(), "source_points": p.source.len(),
            "time_s": times[times.len() / 2], "iterations": iterations, "converged": converged,
            "inliers": inliers, "vs_reference_deg": deg, "vs_reference_cm": 100.0 * m, "reference_exact": p.exact,
            "T": (0..4).map(|r| (0..4).map(|c| tm[(r, c)]).collect::<Vec<_>>()).collect::<Vec<_>>(),
        });
        println!("{row}");
        if let Some(dir) = &dump {
            std::fs::create_dir_all(dir)?;
            let write = |name: String, pts: &[[f64; 3]]| -> std::io::Result<()> {
                let bytes: Vec<u8> = pts.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
                std::fs::write(dir.join(name), bytes)
            };
            write(format!("{n}_target.f64"), &p.target)?;
            write(format!("{n}_source.f64"), &p.source)?;
            let im = p.init.to_homogeneous();
            let rm = p.reference.to_homogeneous();
            let m4 = |m: &Matrix4<f64>| {
                (0..4).map(|r| (0..4).map(|c| m[(r, c)]).collect::<Vec<_>>()).collect::<Vec<_>>()
            };
            manifest.push(serde_json::json!({
                "index": n, "pair": p.name, "init": m4(&im), "reference": m4(&rm), "reference_exact": p.exact,
                "ours": row,
            }));
        }
    }
    if let Some(dir) = &dump {
        std::fs::write(
            dir.join("manifest.json"),
            serde_json::to_string_pretty(&serde_json::json!({
                "voxel_m": VOXEL_M, "k_neighbours": K, "max_correspondence_m": cfg.max_correspondence_m,
                "max_iterations": cfg.max_iterations, "threads": rayon::current_num_threads(), "pairs": manifest,
            }))?,
        )?;
    }
    Ok(())
}
