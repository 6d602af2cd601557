//! `hdmap features ndt` (the LiDAR localization layer from a static cloud) and
//! `hdmap localize` (a drive localized against that layer, scored against ground truth).

use std::path::PathBuf;

use anyhow::{Context, bail};
use hdmap_core::nalgebra::Translation3;
use hdmap_core::{FrameId, StampedPose, Trajectory};

/// Arguments of `hdmap features ndt`.
#[derive(clap::Args)]
pub struct NdtArgs {
    /// The static cloud (LAS/LAZ in a projected CRS, e.g. `clean/static.laz`).
    #[arg(long)]
    pub cloud: PathBuf,
    /// The road layout whose CRS and origin the map frame uses (`.gpkg` or `.geojson`).
    #[arg(long)]
    pub layout: PathBuf,
    /// Output folder (`metadata.json` + PCD tiles).
    #[arg(long)]
    pub out: PathBuf,
    /// Settings (TOML, keys of `NdtConfig`): voxel_size_m, min_points, tile_m, …
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `hdmap features ndt`.
pub fn features_ndt(a: &NdtArgs) -> anyhow::Result<()> {
    let cfg: hdmap_features::NdtConfig = crate::read_config(a.config.as_deref())?;
    let layout = crate::export_cmd::read_layout_file(&a.layout, None, &mut hdmap_core::Issues::new())?;
    let origin = layout.origin;
    let las = hdmap_io::las::read_las(&a.cloud, |_| {})?;
    if let Some(crs) = &las.header.crs
        && let Some(epsg) = crs.epsg()
        && epsg != origin.epsg
    {
        bail!("{}: the cloud is in EPSG:{epsg}, the layout in EPSG:{}", a.cloud.display(), origin.epsg);
    }
    let o = origin.origin;
    let pts: Vec<[f64; 3]> =
        las.cloud.positions.iter().map(|p| [p[0] - o[0], p[1] - o[1], p[2] - o[2]]).collect();
    let map =
        hdmap_features::build_ndt(&pts, &origin, &cfg).with_context(|| format!("{}", a.cloud.display()))?;
    hdmap_io::ndt::write_ndt(&a.out, &map, cfg.tile_m)?;
    let size = hdmap_io::fsutil::tree_size(&a.out);
    println!(
        "{} points → {} voxels of {} m ({:.1} MB) in {}",
        pts.len(),
        map.cells.len(),
        cfg.voxel_size_m,
        size as f64 / 1e6,
        a.out.display()
    );
    Ok(())
}

/// Arguments of `hdmap localize`.
#[derive(clap::Args)]
pub struct LocalizeArgs {
    /// The NDT layer (`hdmap features ndt` output, or an export folder holding `ndt_map/`);
    /// with --camera the visual layer (`hdmap features visual` output, or an export folder
    /// holding `visual_map/`).
    #[arg(long)]
    pub map: PathBuf,
    /// Localize camera 0's images (`camera0/` of the drive) against the visual layer instead
    /// of the LiDAR scans against the NDT layer.
    #[arg(long)]
    pub camera: bool,
    /// The drive to localize: `lidar/*.pcd`, `ins.csv` (the coarse prior), and `rig.toml` or
    /// `rig_nominal.toml` unless --rig.
    #[arg(long)]
    pub drive: PathBuf,
    /// Rig file instead of the drive's own.
    #[arg(long)]
    pub rig: Option<PathBuf>,
    /// Ground truth to score against (pose CSV, true time): `world_from_lidar` per scan, or
    /// with --camera `world_from_camera0` (the simulator's `truth/camera0_poses_true.csv`).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Use every n-th scan (image).
    #[arg(long, default_value_t = 1)]
    pub every: usize,
    /// Settings (TOML, keys of `LocalizeConfig`; with --camera of `VisualLocalizeConfig`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output folder: `localized.csv` (world_from_lidar per scan, stamped with the scans' own
    /// LiDAR-clock stamps) or with --camera `localized_camera.csv` (world_from_camera0 per
    /// localized image, true time), and `report.json`.
    #[arg(long)]
    pub out: PathBuf,
}

/// `hdmap localize`.
pub fn localize(a: &LocalizeArgs) -> anyhow::Result<()> {
    if a.camera {
        return crate::visual_cmd::localize_camera(a);
    }
    let cfg: hdmap_localize::LocalizeConfig = crate::read_config(a.config.as_deref())?;
    let map_dir =
        if a.map.join("ndt_map/metadata.json").is_file() { a.map.join("ndt_map") } else { a.map.clone() };
    let map = hdmap_io::ndt::read_ndt(&map_dir)?;
    let origin = map.origin.clone();
    let rcfg = hdmap_register::drive::RegisterConfig {
        keyframe_every: a.every.max(1),
        ..hdmap_register::drive::RegisterConfig::default()
    };
    let t0 = std::time::Instant::now();
    let drive = hdmap_register::drive::load_drive(&a.drive, a.rig.as_deref(), Some(&origin), &rcfg)?;
    let o = origin.origin;
    let to_map = Translation3::new(-o[0], -o[1], -o[2]);
    let scans: Vec<hdmap_localize::ScanInput> = drive
        .scans
        .iter()
        .map(|(_, s)| hdmap_localize::ScanInput {
            stamp_ns: s.stamp_ns,
            points_lidar: s.points_lidar.clone(),
            prior_map_from_lidar: to_map * s.world_from_lidar,
        })
        .collect();
    let load_s = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    let found = hdmap_localize::track(&map, &scans, &cfg)?;
    let track_s = t1.elapsed().as_secs_f64();
    let to_world = Translation3::new(o[0], o[1], o[2]);
    let poses: Vec<StampedPose> = found
        .iter()
        .map(|f| StampedPose { stamp_ns: f.stamp_ns, target_from_source: to_world * f.map_from_lidar })
        .collect();
    std::fs::create_dir_all(&a.out).with_context(|| format!("{}", a.out.display()))?;
    let traj = Trajectory {
        target: FrameId::World,
        source: FrameId::Lidar(0),
        origin: Some(origin.clone()),
        origin_relative: false,
        poses,
    };
    hdmap_io::trajectory::write_pose_csv(&a.out.join("localized.csv"), &traj)?;
    let ok = found.iter().filter(|f| f.ok).count();
    println!(
        "{ok} of {} scans localized against {} voxels ({:.1} ms per scan; loading {load_s:.1} s)",
        found.len(),
        map.cells.len(),
        1e3 * track_s / found.len().max(1) as f64
    );
    let mut report = serde_json::json!({
        "map": map_dir.display().to_string(),
        "drive": a.drive.display().to_string(),
        "scans": found.len(),
        "localized": ok,
        "cold_starts": found.iter().filter(|f| f.cold_start).count(),
        "ms_per_scan": 1e3 * track_s / found.len().max(1) as f64,
        "config": cfg,
    });
    if let Some(tp) = &a.truth {
        let truth = hdmap_io::trajectory::read_pose_csv(tp, FrameId::World, FrameId::Lidar(0))?;
        if let Some(to) = &truth.origin
            && to.epsg != origin.epsg
        {
            bail!("{}: truth in EPSG:{}, the map in EPSG:{}", tp.display(), to.epsg, origin.epsg);
        }
        // Scan stamps are on the LiDAR clock; truth is in true time.
        let offset = drive.georef.lidar_time_offset_ns;
        let mut matched = (Vec::new(), Vec::new(), Vec::new());
        for (f, s) in found.iter().zip(&scans) {
            let t = f.stamp_ns - offset;
            let k = truth.poses.partition_point(|p| p.stamp_ns < t);
            let near = [k.checked_sub(1), Some(k)]
                .into_iter()
                .flatten()
                .filter_map(|i| truth.poses.get(i))
                .min_by_key(|p| (p.stamp_ns - t).abs());
            if let Some(p) = near.filter(|p| (p.stamp_ns - t).abs() <= 20_000_000) {
                matched.0.push(f.clone());
                matched.1.push(s.prior_map_from_lidar);
                matched.2.push(to_map * p.target_from_source);
            }
        }
        if matched.0.is_empty() {
            bail!("{}: no truth pose within 20 ms of any scan", tp.display());
        }
        let sc = hdmap_localize::score(&matched.0, &matched.1, &matched.2);
        println!(
            "against the truth ({} scans): RMSE {:.1} cm (xy {:.1} cm), max {:.1} cm, rotation {:.3}°; within 0.1 m / 0.5°: {:.1} % (GNSS/INS prior: RMSE {:.1} cm, {:.1} %)",
            sc.scans,
            100.0 * sc.rmse_m,
            100.0 * sc.rmse_xy_m,
            100.0 * sc.max_m,
            sc.mean_rot_deg,
            100.0 * sc.within_10cm_05deg,
            100.0 * sc.prior_rmse_m,
            100.0 * sc.prior_within_10cm_05deg
        );
        report["score"] = serde_json::to_value(&sc)?;
    }
    write_report(&a.out, &report)
}

/// Writes a localization run's `report.json` into `out` (atomically) and says so.
pub(crate) fn write_report(out: &std::path::Path, report: &serde_json::Value) -> anyhow::Result<()> {
    hdmap_io::fsutil::write_bytes_atomic(
        &out.join("report.json"),
        serde_json::to_string_pretty(report)?.as_bytes(),
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
