//! `hdmap features visual` (the visual feature layer from a drive's camera images and poses)
//! and `hdmap localize --camera` (camera-only localization of a drive against it).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hdmap_core::nalgebra::Translation3;
use hdmap_core::{FrameId, GeoOrigin, Rig, StampedPose, Trajectory};
use hdmap_features::visual;
use rayon::prelude::*;

/// Arguments of `hdmap features visual`.
#[derive(clap::Args)]
pub struct VisualArgs {
    /// The drive: `camera0/` (images, images.csv, camera.toml) and `rig.toml` or
    /// `rig_nominal.toml` unless --rig.
    #[arg(long)]
    pub drive: PathBuf,
    /// Poses of the drive (pose CSV with CRS origin): the register stage's
    /// `trajectory.csv` (LiDAR 0), or poses of camera 0, the vehicle or the GNSS antenna.
    #[arg(long)]
    pub poses: PathBuf,
    /// Rig file instead of the drive's own.
    #[arg(long)]
    pub rig: Option<PathBuf>,
    /// Output folder (kapture 1.1 + hdmap_visual.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Settings (TOML, keys of `VisualConfig`): max_features, fast_threshold, min_views, …
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// The drive's rig (`--rig`, else the drive's `rig.toml`, else its `rig_nominal.toml`).
fn drive_rig(drive: &Path, rig: Option<&Path>) -> anyhow::Result<Rig> {
    Ok(hdmap_io::rig::read_rig(&hdmap_io::rig::drive_rig_path(drive, rig)?)?)
}

/// A pose CSV whose frames and CRS origin are declared in its header.
fn read_poses(path: &Path) -> anyhow::Result<(Trajectory, GeoOrigin)> {
    let traj = hdmap_io::trajectory::read_pose_csv(path, FrameId::World, FrameId::Camera(0))?;
    let origin = traj.origin.clone().with_context(|| {
        format!(
            "{}: no CRS origin in the header (hdmap pose CSVs carry `epsg=` and `origin=`)",
            path.display()
        )
    })?;
    Ok((traj, origin))
}

/// `hdmap features visual`.
pub fn features_visual(a: &VisualArgs) -> anyhow::Result<()> {
    let cfg: visual::VisualConfig = crate::read_config(a.config.as_deref())?;
    let rig = drive_rig(&a.drive, a.rig.as_deref())?;
    let (traj, origin) = read_poses(&a.poses)?;
    let t0 = std::time::Instant::now();
    let (map, stats, skipped) =
        visual::build_visual_from_folder(&a.drive.join("camera0"), &traj, &rig, &origin, &cfg)?;
    if skipped > 0 {
        tracing::warn!("{skipped} images outside the trajectory {} were left out", a.poses.display());
    }
    visual::write_visual(&a.out, &map)?;
    let mb = hdmap_io::fsutil::tree_size(&a.out) as f64 / 1e6;
    println!(
        "{} images ({:.0} features each, {} pairwise matches, {} tracks) → {} points seen {:.1} times on average, RMS reprojection {:.2} px; {mb:.1} MB in {} ({:.1} s)",
        stats.images,
        stats.features_per_image,
        stats.matches,
        stats.tracks,
        stats.points,
        stats.mean_track_length,
        stats.rms_reprojection_px,
        a.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `hdmap localize --camera`: every image of the drive's camera 0 localized on its own.
pub fn localize_camera(a: &crate::localize_cmd::LocalizeArgs) -> anyhow::Result<()> {
    let cfg: hdmap_localize::visual::VisualLocalizeConfig = crate::read_config(a.config.as_deref())?;
    let map_dir = if a.map.join("visual_map").join(visual::METADATA_FILE).is_file() {
        a.map.join("visual_map")
    } else {
        a.map.clone()
    };
    let map = visual::read_visual(&map_dir)?;
    let origin = map.origin.clone();
    let rig = drive_rig(&a.drive, a.rig.as_deref())?;
    let ins_path = a.drive.join("ins.csv");
    let mut ins = hdmap_io::trajectory::read_ins_csv(&ins_path, None)?.trajectory;
    match &ins.origin {
        Some(o) if o.epsg != origin.epsg => {
            bail!("{}: the INS is in EPSG:{}, the map in EPSG:{}", ins_path.display(), o.epsg, origin.epsg)
        }
        Some(_) => {}
        None => ins.origin = Some(origin.clone()),
    }
    let camera_dir = a.drive.join("camera0");
    let (k, records) = hdmap_io::camera_records::read_camera_folder(&camera_dir)?;
    let t0 = std::time::Instant::now();
    let records: Vec<_> = records.into_iter().step_by(a.every.max(1)).collect();
    // Priors first (a rig without camera 0 is an error, not a skipped image), then the images
    // read and their features extracted in parallel.
    let mut posed = Vec::with_capacity(records.len());
    for r in &records {
        match visual::camera_pose_at(&ins, &rig, &origin, r.stamp_ns) {
            Ok(prior) => posed.push((r, prior)),
            Err(hdmap_core::CoreError::OutsideTrajectory { .. }) => {
                tracing::warn!("{}: outside the INS solution, left out", r.path.display())
            }
            Err(e) => bail!("{}: {e}", r.path.display()),
        }
    }
    let queries = posed
        .par_iter()
        .map(|(r, prior)| {
            Ok(hdmap_localize::visual::QueryImage {
                stamp_ns: r.stamp_ns,
                features: visual::extract(&hdmap_io::camera_records::read_grey(r, &k)?, &map.settings),
                prior_map_from_camera: *prior,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if queries.is_empty() {
        bail!("{}: no image inside the INS solution", camera_dir.display());
    }
    let fixes = hdmap_localize::visual::localize_images(&map, &k, &queries, &cfg)?;
    let secs = t0.elapsed().as_secs_f64();
    let o = origin.origin;
    let to_world = Translation3::new(o[0], o[1], o[2]);
    // Written in true time (camera stamp − the rig's camera clock offset), as trajectories of
    // sensors other than a LiDAR are.
    let offset = rig.time_offset_ns(FrameId::Camera(0));
    let poses: Vec<StampedPose> = fixes
        .iter()
        .filter_map(|f| {
            f.map_from_camera
                .map(|p| StampedPose { stamp_ns: f.stamp_ns - offset, target_from_source: to_world * p })
        })
        .collect();
    std::fs::create_dir_all(&a.out).with_context(|| format!("{}", a.out.display()))?;
    let csv = a.out.join("localized_camera.csv");
    if poses.is_empty() {
        // No pose: no file, and none left over from an earlier run.
        if csv.exists() {
            std::fs::remove_file(&csv).with_context(|| format!("{}", csv.display()))?;
        }
    } else {
        let traj = Trajectory {
            target: FrameId::World,
            source: FrameId::Camera(0),
            origin: Some(origin.clone()),
            origin_relative: false,
            poses,
        };
        hdmap_io::trajectory::write_pose_csv(&csv, &traj)?;
    }
    let ok = fixes.iter().filter(|f| f.map_from_camera.is_some()).count();
    println!(
        "{ok} of {} images localized against {} points ({:.2} s per image)",
        fixes.len(),
        map.xyz.len(),
        secs / fixes.len() as f64
    );
    let mut report = serde_json::json!({
        "map": map_dir.display().to_string(),
        "drive": a.drive.display().to_string(),
        "images": fixes.len(),
        "localized": ok,
        "map_points": map.xyz.len(),
        "s_per_image": secs / fixes.len() as f64,
        "fixes": fixes,
        "config": cfg,
    });
    if let Some(tp) = &a.truth {
        let (truth, _) = read_poses(tp)?;
        if truth.origin.as_ref().is_some_and(|t| t.epsg != origin.epsg) {
            bail!("{}: truth and map are in different CRSs", tp.display());
        }
        let empty = Rig::default();
        let mut scored = (Vec::new(), Vec::new(), Vec::new());
        for (f, q) in fixes.iter().zip(&queries) {
            if let Ok(t) = visual::camera_pose_at(&truth, &empty, &origin, f.stamp_ns - offset) {
                scored.0.push(f.clone());
                scored.1.push(t);
                scored.2.push(hdmap_localize::visual::CameraFix {
                    map_from_camera: Some(q.prior_map_from_camera),
                    ..f.clone()
                });
            }
        }
        if scored.0.is_empty() {
            bail!("{}: no truth pose at any image stamp", tp.display());
        }
        let th = hdmap_localize::visual::AACHEN_THRESHOLDS;
        let rc = hdmap_localize::visual::recall(&scored.0, &scored.1, &th);
        let prior = hdmap_localize::visual::recall(&scored.2, &scored.1, &th);
        let pct = |r: &hdmap_localize::visual::Recall| {
            r.at.iter()
                .map(|(m, d, v)| format!("({m} m, {d}°) {:.1} %", 100.0 * v))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "against the truth ({} images): recall {}; median error {:.1} cm / {:.2}° (GNSS/INS prior: {})",
            rc.images,
            pct(&rc),
            100.0 * rc.median_m,
            rc.median_deg,
            pct(&prior)
        );
        report["recall"] = serde_json::to_value(&rc)?;
        report["prior_recall"] = serde_json::to_value(&prior)?;
    }
    crate::localize_cmd::write_report(&a.out, &report)
}
