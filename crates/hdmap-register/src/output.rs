//! What `hdmap register` writes: the corrected trajectory, per-pose covariances, the aligned
//! cloud and a residual report. Every file is written atomically.

use std::path::{Path, PathBuf};

use hdmap_core::nalgebra::Point3;
use hdmap_core::{CloudFrame, PointCloud, TimeBase};
use serde::Serialize;

use crate::RegisterError;
use crate::drive::{Drive, PaintResiduals, Registration, trajectory};

/// File names inside the output directory.
pub mod files {
    /// Corrected `world_from_lidar0` per keyframe (hdmap pose CSV, absolute CRS coordinates).
    pub const TRAJECTORY: &str = "trajectory.csv";
    /// Marginal covariance per keyframe.
    pub const COVARIANCE: &str = "covariance.csv";
    /// Keyframe scans in world coordinates with the corrected poses.
    pub const CLOUD: &str = "cloud.laz";
    /// Residual report.
    pub const REPORT: &str = "report.json";
    /// Provenance of every cloud point, in cloud order: little-endian `u32` keyframe index (into
    /// the report's `scan_files`) then `u32` point index within that scan file.
    pub const CLOUD_SOURCE: &str = "cloud_source.bin";
}

/// Quantiles of a sample.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    /// Median.
    pub median: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Maximum.
    pub max: f64,
}

impl Spread {
    /// Of a sample; `None` when empty.
    pub fn of(mut v: Vec<f64>) -> Option<Self> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let q = |f: f64| v[((v.len() as f64 * f) as usize).min(v.len() - 1)];
        Some(Self { median: q(0.5), p95: q(0.95), max: v[v.len() - 1] })
    }
}

/// The residual report (`report.json`).
#[derive(Debug, Clone, Serialize)]
pub struct RegisterReport {
    /// Keyframes (poses of the graph).
    pub keyframes: usize,
    /// Scan-matching edges between consecutive keyframes.
    pub consecutive_edges: usize,
    /// Scan-matching edges between passes.
    pub overlap_edges: usize,
    /// How far the solution departs from each scan match: rotation, degrees.
    pub edge_rotation_deg: Option<Spread>,
    /// ... and translation, cm.
    pub edge_translation_cm: Option<Spread>,
    /// Marking points against the layout's paint.
    pub paint: Option<PaintResiduals>,
    /// Horizontal correction applied to the INS poses, cm.
    pub correction_xy_cm: Option<Spread>,
    /// Vertical correction, cm (absolute).
    pub correction_z_cm: Option<Spread>,
    /// Marginal horizontal position sigma along the major axis of the world-frame error
    /// ellipse, cm.
    pub sigma_xy_cm: Option<Spread>,
    /// Marginal heading sigma (rotation about the world vertical), degrees.
    pub sigma_yaw_deg: Option<Spread>,
    /// Points in the aligned cloud.
    pub cloud_points: usize,
    /// EPSG code of every output.
    pub epsg: u32,
    /// File name of each keyframe's scan (in the drive's `lidar/`), keyframe order.
    pub scan_files: Vec<String>,
    /// The files written, relative to the output directory (the report stays true when the
    /// directory is moved, as `hdmap run` does).
    pub files: Vec<PathBuf>,
}

/// The provenance of a register output's cloud: the keyframes' scan file names (its
/// `report.json`'s `scan_files`, in the order `cloud_source.bin` indexes them) and the bytes of
/// `cloud_source.bin`.
pub fn read_provenance(out_dir: &Path) -> Result<(Vec<String>, Vec<u8>), RegisterError> {
    let path = out_dir.join(files::REPORT);
    let bad =
        |path: &Path, message: String| RegisterError::Input { path: path.display().to_string(), message };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(&path, e.to_string()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(&path, e.to_string()))?;
    let list = v["scan_files"].as_array().ok_or_else(|| bad(&path, "no scan_files list".into()))?;
    let names = list
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| bad(&path, format!("scan_files entry {x} is not a name")))
        })
        .collect::<Result<_, _>>()?;
    let source = out_dir.join(files::CLOUD_SOURCE);
    let bytes = std::fs::read(&source).map_err(|e| bad(&source, e.to_string()))?;
    Ok((names, bytes))
}

/// Writes the outputs of a registration into `out_dir` (created if missing) and returns the
/// report (also written as `report.json`).
pub fn write_outputs(
    out_dir: &Path,
    drive: &Drive,
    reg: &Registration,
) -> Result<RegisterReport, RegisterError> {
    let origin = drive.ins.trajectory.origin.clone().ok_or_else(|| RegisterError::Input {
        path: out_dir.display().to_string(),
        message: "the drive has no CRS origin: refusing to write world outputs".into(),
    })?;
    std::fs::create_dir_all(out_dir)
        .map_err(|e| RegisterError::Input { path: out_dir.display().to_string(), message: e.to_string() })?;
    let traj = trajectory(reg, drive)?;
    hdmap_io::trajectory::write_pose_csv(&out_dir.join(files::TRAJECTORY), &traj)?;
    write_covariances(&out_dir.join(files::COVARIANCE), reg)?;
    // The aligned cloud: every keyframe's deskewed points through its corrected pose.
    let mut positions = Vec::new();
    let mut intensity = Vec::new();
    let mut time_s = Vec::new();
    let mut scan_id = Vec::new();
    let mut source = Vec::new();
    for (k, ((_, s), pose)) in drive.scans.iter().zip(&reg.world_from_lidar).enumerate() {
        for &i in &s.kept {
            source.extend_from_slice(&(k as u32).to_le_bytes());
            source.extend_from_slice(&i.to_le_bytes());
        }
        positions.extend(s.points_lidar.iter().map(|p| {
            let w = pose * Point3::from(*p);
            [w.x, w.y, w.z]
        }));
        match &s.intensity {
            Some(v) => intensity.extend_from_slice(v),
            None => intensity.extend(std::iter::repeat_n(0.0, s.points_lidar.len())),
        }
        time_s.extend(std::iter::repeat_n(s.stamp_ns as f64 * 1e-9, s.points_lidar.len()));
        scan_id.extend(std::iter::repeat_n(k as u32, s.points_lidar.len()));
    }
    let cloud_points = positions.len();
    let mut cloud = PointCloud::from_positions(CloudFrame::World(origin.crs()), positions);
    cloud.intensity = Some(intensity);
    cloud.time_s = Some(time_s);
    cloud.time_base = TimeBase::Unix;
    cloud.scan_id = Some(scan_id);
    let opts = hdmap_io::las::LasWriteOptions::for_cloud(&cloud);
    hdmap_io::las::write_las(&out_dir.join(files::CLOUD), &cloud, &opts)?;
    hdmap_io::fsutil::write_bytes_atomic(&out_dir.join(files::CLOUD_SOURCE), &source)?;

    let ins: Vec<_> = drive.scans.iter().map(|(_, s)| s.world_from_lidar).collect();
    let corr: Vec<_> = ins
        .iter()
        .zip(&reg.world_from_lidar)
        .map(|(a, b)| b.translation.vector - a.translation.vector)
        .collect();
    let report = RegisterReport {
        keyframes: reg.world_from_lidar.len(),
        consecutive_edges: reg.edges.iter().filter(|e| !e.overlap).count(),
        overlap_edges: reg.edges.iter().filter(|e| e.overlap).count(),
        edge_rotation_deg: Spread::of(reg.edge_residuals.iter().map(|e| e.0).collect()),
        edge_translation_cm: Spread::of(reg.edge_residuals.iter().map(|e| 100.0 * e.1).collect()),
        paint: reg.paint.clone(),
        correction_xy_cm: Spread::of(corr.iter().map(|d| 100.0 * d.x.hypot(d.y)).collect()),
        correction_z_cm: Spread::of(corr.iter().map(|d| 100.0 * d.z.abs()).collect()),
        sigma_xy_cm: Spread::of(
            reg.covariances
                .iter()
                .zip(&reg.world_from_lidar)
                .map(|(c, t)| {
                    let xy = world_block(c, t, 3).fixed_view::<2, 2>(0, 0).into_owned();
                    100.0 * xy.symmetric_eigenvalues().max().max(0.0).sqrt()
                })
                .collect(),
        ),
        sigma_yaw_deg: Spread::of(
            reg.covariances
                .iter()
                .zip(&reg.world_from_lidar)
                .map(|(c, t)| world_block(c, t, 0)[(2, 2)].max(0.0).sqrt().to_degrees())
                .collect(),
        ),
        cloud_points,
        epsg: origin.epsg,
        scan_files: drive
            .scans
            .iter()
            .map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default())
            .collect(),
        files: [files::TRAJECTORY, files::COVARIANCE, files::CLOUD, files::CLOUD_SOURCE, files::REPORT]
            .iter()
            .map(PathBuf::from)
            .collect(),
    };
    let json = serde_json::to_string_pretty(&report)
        .map_err(|e| RegisterError::Input { path: files::REPORT.into(), message: e.to_string() })?;
    hdmap_io::fsutil::write_bytes_atomic(&out_dir.join(files::REPORT), json.as_bytes())?;
    Ok(report)
}

/// The 3×3 block at `at` (0: rotation, 3: translation) of a body-frame covariance, in world
/// axes (R Σ Rᵀ with R of `world_from_lidar`).
fn world_block(
    c: &hdmap_core::nalgebra::Matrix6<f64>,
    world_from_lidar: &hdmap_core::nalgebra::Isometry3<f64>,
    at: usize,
) -> hdmap_core::nalgebra::Matrix3<f64> {
    let r = world_from_lidar.rotation.to_rotation_matrix().into_inner();
    r * c.fixed_view::<3, 3>(at, at) * r.transpose()
}

/// `covariance.csv`: per keyframe its stamp, the sigmas (rotation about the LiDAR axes in
/// degrees, translation along them in metres) and the 36 entries of the 6×6 marginal
/// covariance (row-major, rotation first, body-frame perturbation `T·exp(δ)`).
fn write_covariances(path: &Path, reg: &Registration) -> Result<(), RegisterError> {
    use std::io::Write;
    let os = |source| hdmap_io::IoError::Os { path: path.to_path_buf(), source };
    hdmap_io::fsutil::write_atomic(path, |w| {
        write!(w, "stamp_ns,sigma_rx_deg,sigma_ry_deg,sigma_rz_deg,sigma_x_m,sigma_y_m,sigma_z_m")
            .map_err(os)?;
        for r in 0..6 {
            for c in 0..6 {
                write!(w, ",c{r}{c}").map_err(os)?;
            }
        }
        writeln!(w).map_err(os)?;
        for (s, c) in reg.stamps_ns.iter().zip(&reg.covariances) {
            write!(w, "{s}").map_err(os)?;
            for k in 0..6 {
                let sd = c[(k, k)].max(0.0).sqrt();
                write!(w, ",{:.6e}", if k < 3 { sd.to_degrees() } else { sd }).map_err(os)?;
            }
            for r in 0..6 {
                for col in 0..6 {
                    write!(w, ",{:.6e}", c[(r, col)]).map_err(os)?;
                }
            }
            writeln!(w).map_err(os)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// The whole stage, as `hdmap register` and `hdmap run` do it: loads and georeferences the
/// drive (`rig_path` instead of the drive's own rig), matches scans unless `constraints` is
/// GNSS only, adjusts the trajectory and writes the outputs into `out_dir`.
pub fn register_drive(
    drive_dir: &Path,
    rig_path: Option<&Path>,
    layout: &hdmap_core::RoadLayout,
    constraints: crate::drive::Constraints,
    cfg: &crate::drive::RegisterConfig,
    out_dir: &Path,
) -> Result<RegisterReport, RegisterError> {
    use crate::drive::{Constraints, load_drive, match_scans, register};
    let drive = load_drive(drive_dir, rig_path, Some(&layout.origin), cfg)?;
    tracing::info!("{} keyframes georeferenced", drive.scans.len());
    let edges = if constraints == Constraints::GnssOnly { Vec::new() } else { match_scans(&drive, cfg)? };
    let reg = register(&drive, &edges, Some(layout), constraints, cfg)?;
    write_outputs(out_dir, &drive, &reg)
}
