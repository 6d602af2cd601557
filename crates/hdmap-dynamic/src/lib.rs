//! hdmap-dynamic: the static map without ghosts of traffic.
//!
//! * [`visibility`]: the free-space check over the whole drive (a voxel any ray saw through is
//!   free; points in free voxels are dynamic), with a reason per point.
//! * [`model`]: the range-image segmentation model (tch): movable classes per point, trained
//!   by [`model::train`] (`hdmap train dynamic`), or a TorchScript file.
//! * [`fusion`]: model and free-space check into one decision per point, object by object,
//!   with parked cars kept or removed (`keep_parked`).
//! * [`metrics`]: SA / DA / AA as the KTH DynamicMap_Benchmark defines them.
//! * [`write_outputs`]: `static.laz` (the map), `removed.laz` (what was taken out, with the
//!   reason as its classification, for QA), `reasons.u8` (the decision for every input point,
//!   in input order) and `report.json`.
//! * [`write_benchmark_scans`]: the scans in the KTH DynamicMap_Benchmark layout (`pcd/*.pcd`,
//!   map-frame points, sensor pose as `VIEWPOINT`), so peers (DUFOMap) run on the same data.
//!
//! Input is the drive's scans in the map frame with the sensor position of each (built by the
//! caller from a registered trajectory); nothing here knows how they were registered.

pub mod fusion;
pub mod metrics;
pub mod model;
pub mod visibility;

use std::collections::BTreeMap;
use std::path::Path;

use hdmap_core::PointCloud;
use serde::{Deserialize, Serialize};

pub use fusion::{ModelConfig, PointClass};
pub use metrics::{Scores, score};
pub use visibility::{Reason, VisibilityConfig, free_space};

/// One scan in the map frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanInput {
    /// Sensor position (the origin of every ray of the scan), map coordinates.
    pub origin: [f64; 3],
    /// Deskewed points, map coordinates.
    pub points: Vec<[f64; 3]>,
}

/// Settings of `hdmap clean` (the `[clean]` section of a pipeline config).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CleanConfig {
    /// The free-space check.
    pub visibility: VisibilityConfig,
    /// The segmentation model and its fusion with the free-space check.
    pub model: ModelConfig,
}

impl CleanConfig {
    /// Checks every value; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        self.visibility.validate()?;
        self.model.validate()
    }

    /// Whether parked movable objects leave the map (a model is set and `keep_parked` is off):
    /// then the truth to score against is every movable point, not only the moving ones.
    pub fn removes_parked(&self) -> bool {
        self.model.weights.is_some() && !self.model.keep_parked
    }
}

/// Output file names.
pub mod files {
    /// The static map.
    pub const STATIC: &str = "static.laz";
    /// The removed points, classification = [`crate::Reason`] code.
    pub const REMOVED: &str = "removed.laz";
    /// Counts, settings and timing.
    pub const REPORT: &str = "report.json";
    /// One byte per input point, in the input cloud's order: its [`crate::Reason`] code.
    pub const REASONS: &str = "reasons.u8";
    /// One byte per input point, in the input cloud's order: the model's
    /// [`crate::model::MovableClass`] code (written when a model ran).
    pub const CLASSES: &str = "classes.u8";
}

/// `report.json` of a clean run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CleanReport {
    /// Scans used.
    pub scans: usize,
    /// Points in.
    pub points: usize,
    /// Points kept in the static map.
    pub kept: usize,
    /// Points removed.
    pub removed: usize,
    /// Points per reason.
    pub reasons: BTreeMap<String, usize>,
    /// The model, when one ran.
    pub model: Option<ModelReport>,
    /// The settings used.
    pub config: CleanConfig,
}

/// The model part of `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelReport {
    /// The model's card.
    pub card: model::ModelCard,
    /// Points per predicted class.
    pub classes: BTreeMap<String, usize>,
    /// Device (`Cpu`, `Cuda(0)`). (Timings are not written, so the outputs are byte-identical
    /// from run to run on one machine; [`CleanRun`] carries them. Another device may round
    /// logits differently.)
    pub device: String,
}

/// Errors of hdmap-dynamic; each names the file or input concerned.
#[derive(Debug, thiserror::Error)]
pub enum DynamicError {
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] hdmap_io::IoError),
    /// The input cannot be cleaned as given.
    #[error("{what}: {message}")]
    Input {
        /// The input.
        what: String,
        /// What is wrong.
        message: String,
    },
}

/// Splits a registered cloud into its scans: the points of a scan are consecutive and carry
/// their scan's time (as `hdmap register` writes `cloud.laz`), and `world_from_sensor` has one
/// pose per scan, in the same order (its `trajectory.csv`). The pose's translation is the
/// sensor origin of every ray of that scan. Fails naming `what` when the counts or the time
/// steps disagree.
pub fn scans_from_cloud(
    what: &str,
    cloud: &PointCloud,
    world_from_sensor: &hdmap_core::Trajectory,
) -> Result<Vec<ScanInput>, DynamicError> {
    let bad = |message: String| DynamicError::Input { what: what.to_string(), message };
    let times = cloud.time_s.as_deref().ok_or_else(|| bad("the cloud has no per-point time".into()))?;
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, t) in times.iter().enumerate() {
        match runs.last_mut() {
            Some((start, end)) if times[*start] == *t => *end = i + 1,
            _ => runs.push((i, i + 1)),
        }
    }
    let poses = &world_from_sensor.poses;
    if runs.len() != poses.len() {
        return Err(bad(format!(
            "{} scans in the cloud (runs of equal time), {} poses",
            runs.len(),
            poses.len()
        )));
    }
    // The cloud's time steps must be the trajectory's (whatever the GPS/Unix time base).
    for (k, w) in runs.windows(2).enumerate() {
        let dt_cloud = times[w[1].0] - times[w[0].0];
        let dt_traj = (poses[k + 1].stamp_ns - poses[k].stamp_ns) as f64 * 1e-9;
        if (dt_cloud - dt_traj).abs() > 1e-3 {
            return Err(bad(format!(
                "scan {} starts {dt_cloud:.4} s after the previous one, the trajectory says {dt_traj:.4} s",
                k + 1
            )));
        }
    }
    Ok(runs
        .iter()
        .zip(poses)
        .map(|(&(a, b), pose)| {
            let t = pose.target_from_source.translation.vector;
            ScanInput { origin: [t.x, t.y, t.z], points: (a..b).map(|i| cloud.positions.get(i)).collect() }
        })
        .collect())
}

/// Writes `static.laz`, `removed.laz` and `report.json` into `out_dir` for `cloud` (the scans'
/// points in order, with their channels) and one reason per point.
pub fn write_outputs(
    out_dir: &Path,
    cloud: &PointCloud,
    reasons: &[Reason],
    scans: usize,
    config: &CleanConfig,
    model: Option<(&[PointClass], ModelReport)>,
) -> Result<CleanReport, DynamicError> {
    if reasons.len() != cloud.len() {
        return Err(DynamicError::Input {
            what: out_dir.display().to_string(),
            message: format!("{} decisions for {} points", reasons.len(), cloud.len()),
        });
    }
    std::fs::create_dir_all(out_dir)
        .map_err(|source| hdmap_io::IoError::Os { path: out_dir.to_path_buf(), source })?;
    let (kept_idx, removed_idx): (Vec<usize>, Vec<usize>) =
        (0..cloud.len()).partition(|&i| !reasons[i].removed());
    let kept_cloud = cloud.select(&kept_idx);
    let mut removed_cloud = cloud.select(&removed_idx);
    removed_cloud.classification = Some(reasons.iter().filter(|r| r.removed()).map(|r| *r as u8).collect());
    for (name, c) in [(files::STATIC, &kept_cloud), (files::REMOVED, &removed_cloud)] {
        let opts = hdmap_io::las::LasWriteOptions::for_cloud(c);
        hdmap_io::las::write_las(&out_dir.join(name), c, &opts)?;
    }
    let codes: Vec<u8> = reasons.iter().map(|r| *r as u8).collect();
    hdmap_io::fsutil::write_bytes_atomic(&out_dir.join(files::REASONS), &codes)?;
    if model.is_none() {
        // A classes.u8 of an earlier run with a model would no longer match reasons.u8.
        let stale = out_dir.join(files::CLASSES);
        if stale.exists() {
            std::fs::remove_file(&stale).map_err(|source| hdmap_io::IoError::Os { path: stale, source })?;
        }
    }
    let model = match model {
        Some((classes, mut m)) => {
            let codes: Vec<u8> = classes.iter().map(|c| c.class).collect();
            hdmap_io::fsutil::write_bytes_atomic(&out_dir.join(files::CLASSES), &codes)?;
            for c in model::MovableClass::ALL {
                m.classes.insert(c.name().into(), codes.iter().filter(|&&k| k == c as u8).count());
            }
            Some(m)
        }
        None => None,
    };
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in reasons {
        let name =
            serde_json::to_value(r).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        *counts.entry(name).or_default() += 1;
    }
    let report = CleanReport {
        scans,
        points: cloud.len(),
        kept: kept_cloud.len(),
        removed: removed_cloud.len(),
        reasons: counts,
        model,
        config: config.clone(),
    };
    let text = serde_json::to_string_pretty(&report)
        .map_err(|e| DynamicError::Input { what: files::REPORT.into(), message: e.to_string() })?;
    hdmap_io::fsutil::write_bytes_atomic(&out_dir.join(files::REPORT), text.as_bytes())?;
    Ok(report)
}

/// Writes `scans` in the KTH DynamicMap_Benchmark layout: `dir/pcd/000000.pcd`, … (binary,
/// `x y z` float32) with points and `VIEWPOINT` relative to `offset` (peers work in float32:
/// absolute map coordinates would lose centimetres). Returns the number of files.
pub fn write_benchmark_scans(
    dir: &Path,
    scans: &[ScanInput],
    offset: [f64; 3],
) -> Result<usize, DynamicError> {
    let pcd = dir.join("pcd");
    std::fs::create_dir_all(&pcd).map_err(|source| hdmap_io::IoError::Os { path: pcd.clone(), source })?;
    for (k, s) in scans.iter().enumerate() {
        let local: Vec<[f64; 3]> =
            s.points.iter().map(|p| [p[0] - offset[0], p[1] - offset[1], p[2] - offset[2]]).collect();
        let cloud = PointCloud::from_positions(hdmap_core::CloudFrame::Undeclared, local);
        let mut opts = hdmap_io::pcd::PcdWriteOptions::new(hdmap_io::pcd::PcdEncoding::Binary);
        let o = s.origin;
        opts.viewpoint = [o[0] - offset[0], o[1] - offset[1], o[2] - offset[2], 1.0, 0.0, 0.0, 0.0];
        hdmap_io::pcd::write_pcd(&pcd.join(format!("{k:06}.pcd")), &cloud, &opts)?;
    }
    let text = format!("{} {} {}\n", offset[0], offset[1], offset[2]);
    hdmap_io::fsutil::write_bytes_atomic(&dir.join("offset.txt"), text.as_bytes())?;
    Ok(scans.len())
}

/// What [`clean_files`] did.
#[derive(Debug, Clone)]
pub struct CleanRun {
    /// The registered cloud read.
    pub cloud: PointCloud,
    /// Its scans.
    pub scans: Vec<ScanInput>,
    /// The free-space check's decision per point of `cloud` (with a model: for the model's
    /// candidates only, the rest `Static`).
    pub visibility: Vec<Reason>,
    /// The model's class per point of `cloud`, when a model ran.
    pub classes: Option<Vec<PointClass>>,
    /// The final decision per point of `cloud`.
    pub reasons: Vec<Reason>,
    /// Seconds the free-space check took (reading and writing excluded).
    pub seconds: f64,
    /// Seconds the model took (reading the scans included), 0 without a model.
    pub model_seconds: f64,
    /// What was written.
    pub report: CleanReport,
}

/// Where the model finds the drive's scans: the raw scans in their sensor frame (what it was
/// trained on), tied to the cloud's points by the register output's provenance.
#[derive(Debug, Clone, Copy)]
pub struct ScanSource<'a> {
    /// The drive's `lidar/` folder.
    pub lidar_dir: &'a Path,
    /// The file name of each scan of the cloud, in scan order.
    pub scan_files: &'a [String],
    /// Per cloud point: little-endian `u32` scan index, `u32` point index in that scan's file.
    pub provenance: &'a [u8],
}

/// The records of a cloud's provenance (`hdmap register`'s `cloud_source.bin`): per point,
/// its scan index and its point index in that scan's file (little-endian `u32` each).
pub fn provenance(bytes: &[u8]) -> Result<Vec<(usize, usize)>, String> {
    if !bytes.len().is_multiple_of(8) {
        return Err(format!("provenance of {} bytes is not pairs of u32", bytes.len()));
    }
    let u32_at = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    Ok(bytes.chunks_exact(8).map(|r| (u32_at(&r[..4]), u32_at(&r[4..]))).collect())
}

/// Runs `model` on every scan of `source` and returns the class of every cloud point
/// (`points` of them) and the seconds it took.
pub fn classify_cloud(
    model: &model::Model,
    source: &ScanSource<'_>,
    points: usize,
) -> Result<(Vec<PointClass>, f64), DynamicError> {
    use rayon::prelude::*;
    let bad = |message: String| DynamicError::Input { what: source.lidar_dir.display().to_string(), message };
    let records = provenance(source.provenance).map_err(bad)?;
    if records.len() != points {
        return Err(bad(format!("provenance of {} points for {points} cloud points", records.len())));
    }
    let start = std::time::Instant::now();
    let labels: Vec<model::ScanLabels> = source
        .scan_files
        .par_iter()
        .map(|name| {
            let f = hdmap_io::pcd::read_pcd(&source.lidar_dir.join(name))?;
            let pts: Vec<[f32; 3]> = (0..f.cloud.len())
                .map(|i| {
                    let p = f.cloud.positions.get(i);
                    [p[0] as f32, p[1] as f32, p[2] as f32]
                })
                .collect();
            model.label_scan(&pts).map_err(|e| DynamicError::Input {
                what: source.lidar_dir.join(name).display().to_string(),
                message: e.to_string(),
            })
        })
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(points);
    for (k, i) in records {
        let l = labels.get(k).ok_or_else(|| bad(format!("scan index {k} beyond {} scans", labels.len())))?;
        let (class, movable) = match (l.class.get(i), l.movable.get(i)) {
            (Some(c), Some(m)) => (*c, *m),
            _ => return Err(bad(format!("{}: no point {i}", source.scan_files[k]))),
        };
        out.push(PointClass { class, movable });
    }
    Ok((out, start.elapsed().as_secs_f64()))
}

/// Cleans a registered cloud on disk (`cloud_path`: its scans' points, each scan consecutive
/// with the scan's time; `trajectory_path`: one `world_from_lidar` pose per scan) into
/// `out_dir` (see [`write_outputs`]). With `config.model.weights`, the model labels the raw
/// scans of `source` (required then) and its classes are fused with the free-space check.
/// Relative weights paths are taken as given (the caller resolves them).
pub fn clean_files(
    cloud_path: &Path,
    trajectory_path: &Path,
    source: Option<&ScanSource<'_>>,
    out_dir: &Path,
    config: &CleanConfig,
) -> Result<CleanRun, DynamicError> {
    config.validate().map_err(|message| DynamicError::Input { what: "clean settings".into(), message })?;
    let cloud = hdmap_io::las::read_las(cloud_path, |_| {})?.cloud;
    if cloud.is_empty() {
        return Err(DynamicError::Input {
            what: cloud_path.display().to_string(),
            message: "the cloud has no points".into(),
        });
    }
    let traj = hdmap_io::trajectory::read_pose_csv(
        trajectory_path,
        hdmap_core::FrameId::World,
        hdmap_core::FrameId::Lidar(0),
    )?;
    let scans = scans_from_cloud(&cloud_path.display().to_string(), &cloud, &traj)?;
    let (visibility, reasons, classes, seconds, model_seconds, model_report) = match &config.model.weights {
        None => {
            let start = std::time::Instant::now();
            let visibility = free_space(&scans, &config.visibility);
            let seconds = start.elapsed().as_secs_f64();
            (visibility.clone(), visibility, None, seconds, 0.0, None)
        }
        Some(weights) => {
            let source = source.ok_or_else(|| DynamicError::Input {
                what: weights.display().to_string(),
                message: "the segmentation model needs the drive's raw scans (hdmap clean --drive DIR)"
                    .into(),
            })?;
            if source.scan_files.len() != scans.len() {
                return Err(DynamicError::Input {
                    what: cloud_path.display().to_string(),
                    message: format!(
                        "{} scans in the cloud, {} scan files",
                        scans.len(),
                        source.scan_files.len()
                    ),
                });
            }
            let m = model::Model::load(weights)?;
            let (classes, model_seconds) = classify_cloud(&m, source, cloud.len())?;
            // The free-space check only for what the model cannot vouch for.
            let start = std::time::Instant::now();
            let candidates = fusion::candidates(&classes, &config.model);
            let visibility = visibility::free_space_of(&scans, &config.visibility, Some(&candidates));
            let seconds = start.elapsed().as_secs_f64();
            let fused = fusion::fuse(&scans, &visibility, &classes, &config.model);
            let report = ModelReport {
                card: m.card().clone(),
                classes: BTreeMap::new(),
                device: format!("{:?}", m.device()),
            };
            (visibility, fused, Some(classes), seconds, model_seconds, Some(report))
        }
    };
    let model_part = classes.as_deref().zip(model_report);
    let report = write_outputs(out_dir, &cloud, &reasons, scans.len(), config, model_part)?;
    Ok(CleanRun { cloud, scans, visibility, classes, reasons, seconds, model_seconds, report })
}
