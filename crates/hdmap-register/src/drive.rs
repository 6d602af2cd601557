//! A whole drive: scans georeferenced with the INS, then the trajectory adjusted in a pose
//! graph with INS priors, scan matching (consecutive keyframes and overlaps between passes)
//! and paint constraints from the layout.

use std::path::{Path, PathBuf};

use hdmap_core::nalgebra::{Isometry3, Matrix3, Matrix6, Point3};
use hdmap_core::{FrameId, RoadLayout, StampedPose, Trajectory};
use hdmap_io::trajectory::InsSolution;
use rayon::prelude::*;

use crate::RegisterError;
use crate::anchor::{AnchorConfig, PaintHit, PaintModel, marking_points};
use crate::georef::{GeorefConfig, Georeferencer, LIDAR, WorldScan};
use crate::gicp::{GicpCloud, GicpConfig, align, voxel_downsample};
use crate::graph::{PoseGraph, diag_cov};

/// Which constraints the adjustment uses (the ablation of the issue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraints {
    /// INS priors only (the georeferenced drive as recorded).
    GnssOnly,
    /// + scan matching between consecutive keyframes and overlapping passes.
    ScanMatching,
    /// + paint on the layout's lines.
    Layout,
}

/// Settings of the registration stage (TOML: these keys at the top level, the sub-settings as
/// tables `[georef]`, `[gicp]`, `[anchor]`; unknown keys are errors).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegisterConfig {
    /// Range filter.
    pub georef: GeorefConfig,
    /// GICP settings.
    pub gicp: GicpConfig,
    /// Marking extraction and association.
    pub anchor: AnchorConfig,
    /// Voxel size of clouds for scan matching, m.
    pub voxel_size_m: f64,
    /// Every n-th scan is a keyframe (a pose of the graph).
    pub keyframe_every: usize,
    /// Keyframes of different passes closer than this are matched, m.
    pub overlap_radius_m: f64,
    /// ... when at least this far apart in time, s.
    pub overlap_min_gap_s: f64,
    /// Scan-matching constraint sigmas: rotation (rad), translation (m).
    pub match_sigma: (f64, f64),
    /// Floor on INS position sigma, m, and attitude sigma, rad.
    pub ins_sigma_floor: (f64, f64),
    /// Marking points used per keyframe (evenly subsampled).
    pub paint_points_per_scan: usize,
    /// Association gates of the successive solve rounds, m.
    pub paint_gates_m: Vec<f64>,
    /// Half-width of the coarse search for the GNSS offset against the layout's paint, m.
    pub coarse_search_m: f64,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        Self {
            georef: GeorefConfig::default(),
            gicp: GicpConfig::default(),
            anchor: AnchorConfig::default(),
            voxel_size_m: 0.3,
            keyframe_every: 2,
            overlap_radius_m: 20.0,
            overlap_min_gap_s: 10.0,
            match_sigma: (0.002, 0.02),
            ins_sigma_floor: (0.02, 0.015),
            paint_points_per_scan: 400,
            paint_gates_m: vec![1.0, 0.6, 0.35, 0.2],
            coarse_search_m: 2.6,
        }
    }
}

impl RegisterConfig {
    /// Checks that every setting is usable: a message naming the first that is not.
    pub fn validate(&self) -> Result<(), String> {
        use crate::positive as pos;
        pos("voxel_size_m", self.voxel_size_m)?;
        pos("overlap_radius_m", self.overlap_radius_m)?;
        pos("coarse_search_m", self.coarse_search_m)?;
        pos("match_sigma[0]", self.match_sigma.0)?;
        pos("match_sigma[1]", self.match_sigma.1)?;
        pos("ins_sigma_floor[0]", self.ins_sigma_floor.0)?;
        pos("ins_sigma_floor[1]", self.ins_sigma_floor.1)?;
        pos("georef.max_range_m", self.georef.max_range_m)?;
        pos("gicp.max_correspondence_m", self.gicp.max_correspondence_m)?;
        pos("anchor.ground_cell_m", self.anchor.ground_cell_m)?;
        pos("anchor.max_range_m", self.anchor.max_range_m)?;
        pos("anchor.intensity_ratio", self.anchor.intensity_ratio)?;
        pos("overlap_min_gap_s", self.overlap_min_gap_s)?;
        pos("anchor.ground_band_m", self.anchor.ground_band_m)?;
        pos("gicp.rotation_eps_rad", self.gicp.rotation_eps_rad)?;
        pos("gicp.translation_eps_m", self.gicp.translation_eps_m)?;
        if let Some(h) = self.gicp.huber_m {
            pos("gicp.huber_m", h)?;
        }
        if !(self.anchor.double_gap_m.is_finite() && self.anchor.double_gap_m >= 0.0) {
            return Err(format!("anchor.double_gap_m = {}: must be ≥ 0", self.anchor.double_gap_m));
        }
        if self.voxel_size_m < 0.01 || self.coarse_search_m > 10.0 || self.anchor.max_range_m > 200.0 {
            return Err(format!(
                "voxel_size_m = {} (≥ 0.01), coarse_search_m = {} (≤ 10 m) or anchor.max_range_m = {} (≤ 200 m) out of range",
                self.voxel_size_m, self.coarse_search_m, self.anchor.max_range_m
            ));
        }
        if !(self.georef.min_range_m >= 0.0 && self.georef.min_range_m < self.georef.max_range_m) {
            return Err(format!(
                "georef.min_range_m = {} must be ≥ 0 and below georef.max_range_m = {}",
                self.georef.min_range_m, self.georef.max_range_m
            ));
        }
        if self.keyframe_every == 0 || self.paint_points_per_scan == 0 {
            return Err("keyframe_every and paint_points_per_scan must be ≥ 1".into());
        }
        if self.gicp.k_neighbours < 3 || self.gicp.max_iterations == 0 {
            return Err("gicp.k_neighbours must be ≥ 3 and gicp.max_iterations ≥ 1".into());
        }
        if self.paint_gates_m.is_empty()
            || self
                .paint_gates_m
                .iter()
                .any(|g| !(g.is_finite() && *g > 0.0 && *g <= crate::anchor::MAX_GATE_M))
        {
            return Err(format!(
                "paint_gates_m = {:?}: needs at least one gate, each in (0, {}] m",
                self.paint_gates_m,
                crate::anchor::MAX_GATE_M
            ));
        }
        Ok(())
    }
}

/// A drive on disk: `lidar/*.pcd`, an INS CSV and a rig.
#[derive(Debug)]
pub struct Drive {
    /// The INS file.
    pub ins_path: PathBuf,
    /// The INS solution (`world_from_gnss`).
    pub ins: InsSolution,
    /// The rig the drive was georeferenced with (the given one, else the drive's own).
    pub rig: hdmap_core::Rig,
    /// Georeferencer built from the INS and the rig.
    pub georef: Georeferencer,
    /// Keyframe scans, georeferenced with the INS.
    pub scans: Vec<(PathBuf, WorldScan)>,
}

/// Loads and georeferences every `keyframe_every`-th scan of `drive_dir` (`lidar/*.pcd`,
/// `ins.csv`, `rig.toml` or `rig_nominal.toml`). INS positions are in `origin`'s CRS (the
/// layout's): an INS file that declares another CRS is refused. `None` leaves the INS in
/// whatever CRS it declares, possibly none, for work that uses its poses only relative to
/// each other (calibration from motion).
pub fn load_drive(
    drive_dir: &Path,
    rig_path: Option<&Path>,
    origin: Option<&hdmap_core::GeoOrigin>,
    cfg: &RegisterConfig,
) -> Result<Drive, RegisterError> {
    cfg.validate()
        .map_err(|message| RegisterError::Input { path: "registration settings".into(), message })?;
    let ins_path = drive_dir.join("ins.csv");
    let mut ins = hdmap_io::trajectory::read_ins_csv(&ins_path, None)?;
    match (&ins.trajectory.origin, origin) {
        (_, None) => {}
        (Some(o), Some(origin)) if o.epsg != origin.epsg => {
            return Err(RegisterError::Input {
                path: ins_path.display().to_string(),
                message: format!("the INS is in EPSG:{}, the layout in EPSG:{}", o.epsg, origin.epsg),
            });
        }
        (Some(_), Some(_)) => {}
        (None, Some(origin)) => ins.trajectory.origin = Some(origin.clone()),
    }
    let rig = hdmap_io::rig::read_rig(&hdmap_io::rig::drive_rig_path(drive_dir, rig_path)?)?;
    let gnss_from_lidar = rig.transform(FrameId::Gnss, LIDAR)?;
    let georef = Georeferencer {
        world_from_gnss: ins.trajectory.clone(),
        gnss_from_lidar,
        lidar_time_offset_ns: rig.time_offset_ns(LIDAR),
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(drive_dir.join("lidar"))
        .map_err(|e| RegisterError::Input {
            path: drive_dir.join("lidar").display().to_string(),
            message: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcd"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(RegisterError::Input {
            path: drive_dir.join("lidar").display().to_string(),
            message: "no .pcd scans".into(),
        });
    }
    let keep: Vec<PathBuf> = files.into_iter().step_by(cfg.keyframe_every.max(1)).collect();
    // Sweeps the INS does not cover (recording started before it, or a clock offset moves the
    // first sweep a little before its first pose) are left out with a warning; any other
    // problem with a scan fails the load, naming it.
    let scans = keep
        .par_iter()
        .map(|p| {
            let f = hdmap_io::pcd::read_pcd(p)?;
            // (Scans without absolute per-point times are left to `georeference`'s error.)
            let absolute = !matches!(
                f.cloud.time_base,
                hdmap_core::TimeBase::ScanRelative | hdmap_core::TimeBase::GpsWeekSeconds
            );
            let covered = !absolute
                || f.cloud.time_s.as_ref().is_none_or(|t| {
                    let (lo, hi) =
                        t.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
                    lo.is_finite()
                        && [lo, hi]
                            .iter()
                            .all(|s| georef.covers(georef.ins_time(hdmap_core::time::seconds_to_ns(*s))))
                });
            if !covered {
                tracing::warn!("{}: outside the INS trajectory, left out", p.display());
                return Ok(None);
            }
            Ok(Some((p.clone(), georef.georeference(p, &f.cloud, &cfg.georef)?)))
        })
        .collect::<Result<Vec<Option<(PathBuf, WorldScan)>>, RegisterError>>()?;
    let outside = scans.iter().filter(|s| s.is_none()).count();
    let mut scans: Vec<(PathBuf, WorldScan)> = scans.into_iter().flatten().collect();
    if scans.is_empty() {
        return Err(RegisterError::Input {
            path: drive_dir.join("lidar").display().to_string(),
            message: format!(
                "none of the {outside} scans lies inside the INS trajectory ({})",
                ins_path.display()
            ),
        });
    }
    // Keyframes in time order, whatever the file names.
    scans.sort_by_key(|(_, s)| s.stamp_ns);
    Ok(Drive { ins_path, ins, rig, georef, scans })
}

/// A scan-matching constraint.
#[derive(Debug, Clone)]
pub struct MatchEdge {
    /// Keyframe indices.
    pub i: usize,
    /// Keyframe indices.
    pub j: usize,
    /// `lidar_i_from_lidar_j` measured.
    pub i_from_j: Isometry3<f64>,
    /// Between passes (not consecutive).
    pub overlap: bool,
}

/// Residual statistics of the paint constraints at the solution.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PaintResiduals {
    /// Marking points within the last association gate of the layout's paint, re-associated at
    /// the solution (farther ones are not counted, so `p95_m` never exceeds that gate).
    pub points: usize,
    /// Share of them that lie on the layout's paint.
    pub on_paint_share: f64,
    /// Median horizontal distance of those points to the layout's paint (0 on paint), m; NaN
    /// when no point was associated.
    pub median_m: f64,
    /// 95th percentile, m.
    pub p95_m: f64,
}

/// The registered drive.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Keyframe stamps, ns.
    pub stamps_ns: Vec<i64>,
    /// Corrected `world_from_lidar` (absolute CRS coordinates).
    pub world_from_lidar: Vec<Isometry3<f64>>,
    /// Marginal covariance per pose (rotation first, body frame), if solved.
    pub covariances: Vec<Matrix6<f64>>,
    /// Scan-matching edges used.
    pub edges: Vec<MatchEdge>,
    /// Paint residuals (layout constraints only).
    pub paint: Option<PaintResiduals>,
    /// Per scan-matching edge, how far the solution departs from the measured relative pose:
    /// (rotation °, translation m).
    pub edge_residuals: Vec<(f64, f64)>,
}

fn scan_cloud(s: &WorldScan, cfg: &RegisterConfig) -> Result<GicpCloud, RegisterError> {
    GicpCloud::new(voxel_downsample(&s.points_lidar, cfg.voxel_size_m), cfg.gicp.k_neighbours)
}

/// Scan matching: consecutive keyframes, and keyframes of other passes within the overlap
/// radius (coarse 2.5 m correspondences first, then the configured ones).
pub fn match_scans(drive: &Drive, cfg: &RegisterConfig) -> Result<Vec<MatchEdge>, RegisterError> {
    let n = drive.scans.len();
    let clouds = keyframe_clouds(drive, cfg)?;
    let ins_pose = |k: usize| drive.scans[k].1.world_from_lidar;
    let mut pairs: Vec<(usize, usize, bool)> = (1..n).map(|k| (k - 1, k, false)).collect();
    let mut last_overlap: Option<usize> = None;
    for i in 0..n {
        if last_overlap.is_some_and(|l| i < l + 3) {
            continue;
        }
        let pi = ins_pose(i).translation.vector;
        let best = (0..i)
            .filter(|&j| {
                j + 1 < i
                    && (drive.scans[i].1.stamp_ns - drive.scans[j].1.stamp_ns) as f64 * 1e-9
                        >= cfg.overlap_min_gap_s
            })
            .map(|j| (j, (ins_pose(j).translation.vector - pi).norm()))
            .filter(|(_, d)| *d <= cfg.overlap_radius_m)
            .inspect(|(j, d)| tracing::debug!("overlap candidate {i}-{j}: {d:.1} m"))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((j, _)) = best {
            pairs.push((j, i, true));
            last_overlap = Some(i);
        }
    }
    Ok(align_pairs(drive, &clouds, &pairs, cfg))
}

/// Scan matching between chosen keyframe pairs `(i, j)`, e.g. keyframes several apart for
/// calibration from motion; as [`match_scans`] does for consecutive keyframes. Pairs that do not
/// converge or overlap by less than half are left out.
pub fn match_pairs(
    drive: &Drive,
    pairs: &[(usize, usize)],
    cfg: &RegisterConfig,
) -> Result<Vec<MatchEdge>, RegisterError> {
    let n = drive.scans.len();
    if let Some(&(i, j)) = pairs.iter().find(|(i, j)| *i >= n || *j >= n || i == j) {
        return Err(RegisterError::Input {
            path: drive.ins_path.display().to_string(),
            message: format!("keyframe pair ({i}, {j}) with {n} keyframes"),
        });
    }
    let clouds = keyframe_clouds(drive, cfg)?;
    let pairs: Vec<(usize, usize, bool)> = pairs.iter().map(|&(i, j)| (i, j, false)).collect();
    Ok(align_pairs(drive, &clouds, &pairs, cfg))
}

/// GICP clouds of every keyframe.
fn keyframe_clouds(drive: &Drive, cfg: &RegisterConfig) -> Result<Vec<GicpCloud>, RegisterError> {
    drive
        .scans
        .par_iter()
        .map(|(p, s)| {
            scan_cloud(s, cfg)
                .map_err(|e| RegisterError::Input { path: p.display().to_string(), message: e.to_string() })
        })
        .collect()
}

/// Aligns keyframe pairs `(i, j, between passes)` from the INS relative pose: coarse 2.5 m
/// correspondences first, then the configured ones.
fn align_pairs(
    drive: &Drive,
    clouds: &[GicpCloud],
    pairs: &[(usize, usize, bool)],
    cfg: &RegisterConfig,
) -> Vec<MatchEdge> {
    let ins_pose = |k: usize| drive.scans[k].1.world_from_lidar;
    let coarse = GicpConfig { max_correspondence_m: 2.5, ..cfg.gicp.clone() };
    pairs
        .par_iter()
        .filter_map(|&(i, j, overlap)| {
            let init = ins_pose(i).inverse() * ins_pose(j);
            let r0 = align(&clouds[i], &clouds[j], &init, &coarse);
            let r = align(&clouds[i], &clouds[j], &r0.target_from_source, &cfg.gicp);
            let inlier_share = r.inliers as f64 / clouds[j].len() as f64;
            (r.converged && inlier_share >= 0.5).then_some(MatchEdge {
                i,
                j,
                i_from_j: r.target_from_source,
                overlap,
            })
        })
        .collect()
}

/// Motion pairs for hand–eye calibration of the LiDAR against the INS: for every consecutive
/// scan match, (`lidar_i_from_lidar_j` measured, `gnss_i_from_gnss_j` from the INS over the same
/// interval). The INS motion is recovered from the georeferenced poses, which are
/// `world_from_gnss · gnss_from_lidar` with the drive's (nominal) rig.
pub fn motion_pairs(drive: &Drive, edges: &[MatchEdge]) -> Vec<(Isometry3<f64>, Isometry3<f64>)> {
    let x = drive.georef.gnss_from_lidar;
    edges
        .iter()
        .filter(|e| !e.overlap)
        .map(|e| {
            let (wi, wj) = (drive.scans[e.i].1.world_from_lidar, drive.scans[e.j].1.world_from_lidar);
            (e.i_from_j, x * wi.inverse() * wj * x.inverse())
        })
        .collect()
}

/// INS prior covariance of keyframe `k` in the pose's body frame (rotation first).
fn ins_cov(drive: &Drive, k: usize, cfg: &RegisterConfig) -> Matrix6<f64> {
    // The INS sigmas at the scan's time on the INS clock.
    let stamp = drive.scans[k].1.stamp_ns - drive.georef.lidar_time_offset_ns;
    let poses = &drive.ins.trajectory.poses;
    let idx = poses.partition_point(|p| p.stamp_ns < stamp).min(poses.len() - 1);
    let pos = drive.ins.position_std_m.as_ref().map(|v| v[idx]).unwrap_or([1.0; 3]);
    let att = drive.ins.attitude_std_rad.as_ref().map(|v| v[idx]).unwrap_or([0.01; 3]);
    let (pf, af) = cfg.ins_sigma_floor;
    let world = Matrix3::from_diagonal(
        &[pos[0].max(pf).powi(2), pos[1].max(pf).powi(2), pos[2].max(pf).powi(2)].into(),
    );
    let r = drive.scans[k].1.world_from_lidar.rotation.to_rotation_matrix().into_inner();
    // Attitude sigmas are about the GNSS/INS body axes: into the LiDAR frame.
    let l_from_g = drive.georef.gnss_from_lidar.rotation.inverse().to_rotation_matrix().into_inner();
    let att_g = Matrix3::from_diagonal(
        &[att[0].max(af).powi(2), att[1].max(af).powi(2), att[2].max(af).powi(2)].into(),
    );
    let mut c = Matrix6::zeros();
    c.fixed_view_mut::<3, 3>(0, 0).copy_from(&(l_from_g * att_g * l_from_g.transpose()));
    c.fixed_view_mut::<3, 3>(3, 3).copy_from(&(r.transpose() * world * r));
    c
}

/// Adjusts the drive's trajectory with the chosen constraints. `layout` is needed for
/// [`Constraints::Layout`]; `edges` are reused between ablation runs.
#[allow(clippy::needless_range_loop)] // keyframe k indexes poses, priors and marking points alike
pub fn register(
    drive: &Drive,
    edges: &[MatchEdge],
    layout: Option<&RoadLayout>,
    constraints: Constraints,
    cfg: &RegisterConfig,
) -> Result<Registration, RegisterError> {
    cfg.validate()
        .map_err(|message| RegisterError::Input { path: "registration settings".into(), message })?;
    let n = drive.scans.len();
    if n == 0 {
        return Err(RegisterError::Input {
            path: drive.ins_path.display().to_string(),
            message: "the drive has no scans".into(),
        });
    }
    let stamps_ns: Vec<i64> = drive.scans.iter().map(|(_, s)| s.stamp_ns).collect();
    let ins: Vec<Isometry3<f64>> = drive.scans.iter().map(|(_, s)| s.world_from_lidar).collect();
    if constraints == Constraints::GnssOnly {
        let covariances = (0..n).map(|k| ins_cov(drive, k, cfg)).collect();
        return Ok(Registration {
            stamps_ns,
            world_from_lidar: ins,
            covariances,
            edges: Vec::new(),
            paint: None,
            edge_residuals: Vec::new(),
        });
    }
    // Graph-local coordinates: the first INS position.
    let o = ins[0].translation.vector;
    let to_local = |t: &Isometry3<f64>| {
        let mut l = *t;
        l.translation.vector -= o;
        l
    };
    let (sr, st) = cfg.match_sigma;
    let match_cov = diag_cov([sr; 3], [st; 3]);
    let paint_index = match (constraints, layout) {
        (Constraints::Layout, Some(l)) => Some(PaintModel::new(l, cfg.anchor.double_gap_m)),
        (Constraints::Layout, None) => {
            return Err(RegisterError::Solver("layout constraints need a layout".into()));
        }
        _ => None,
    };
    if let (Constraints::Layout, Some(l)) = (constraints, layout) {
        check_overlap(drive, l)?;
    }
    if paint_index.as_ref().is_some_and(|p| p.is_empty()) {
        return Err(RegisterError::Solver(
            "the layout has no paint (lane lines, stop lines, crosswalks, marks) to anchor to".into(),
        ));
    }
    let paint_pts: Vec<Vec<[f64; 3]>> = drive
        .scans
        .iter()
        .map(|(_, s)| {
            let Some(int) = s.intensity.as_ref() else { return Vec::new() };
            let idx = marking_points(&s.points_lidar, int, &cfg.anchor);
            let step = idx.len().div_ceil(cfg.paint_points_per_scan.max(1)).max(1);
            idx.iter().step_by(step).map(|&i| s.points_lidar[i]).collect()
        })
        .collect();
    let rounds: Vec<Option<f64>> =
        if paint_index.is_some() { cfg.paint_gates_m.iter().map(|g| Some(*g)).collect() } else { vec![None] };
    let mut current: Vec<Isometry3<f64>> = ins.iter().map(to_local).collect();
    if let Some(model) = paint_index.as_ref() {
        coarse_paint_offsets(&mut current, &paint_pts, model, o, cfg);
    }
    let mut solution = None;
    for gate in rounds {
        let mut g = PoseGraph::new(&current);
        for k in 0..n {
            g.prior(k, &to_local(&ins[k]), &ins_cov(drive, k, cfg))?;
        }
        for e in edges {
            g.between(e.i, e.j, &e.i_from_j, &match_cov)?;
        }
        if let (Some(gate), Some(index)) = (gate, paint_index.as_ref()) {
            let pairs = associate(index, &paint_pts, &current, o, gate);
            for (k, p, hit) in &pairs {
                match *hit {
                    PaintHit::Inside { z } => g.paint(*k, *p, None, z - o.z),
                    PaintHit::Outside { q, n, z, .. } => {
                        g.paint(*k, *p, Some(([q[0] - o.x, q[1] - o.y], n)), z - o.z)
                    }
                }
            }
            tracing::info!("paint round (gate {gate} m): {} marking points associated", pairs.len());
        }
        let s = g.solve(50)?;
        current = s.poses.clone();
        solution = Some(s);
    }
    let s = solution.ok_or_else(|| RegisterError::Solver("no solve round ran".into()))?;
    // Residuals at the solution (re-associated with the final gate).
    let paint_stats = paint_index.as_ref().map(|index| {
        let gate = cfg.paint_gates_m.last().copied().unwrap_or(0.4);
        let dists: Vec<f64> = associate(index, &paint_pts, &current, o, gate)
            .into_iter()
            .map(|x| match x.2 {
                PaintHit::Inside { .. } => 0.0,
                PaintHit::Outside { d, .. } => d,
            })
            .collect();
        let on = dists.iter().filter(|d| **d == 0.0).count();
        let n = dists.len();
        let spread = crate::output::Spread::of(dists);
        PaintResiduals {
            points: n,
            on_paint_share: on as f64 / n.max(1) as f64,
            median_m: spread.map_or(f64::NAN, |s| s.median),
            p95_m: spread.map_or(f64::NAN, |s| s.p95),
        }
    });
    let world_from_lidar = s
        .poses
        .iter()
        .map(|t| {
            let mut w = *t;
            w.translation.vector += o;
            w
        })
        .collect();
    Ok(Registration {
        stamps_ns,
        world_from_lidar,
        covariances: s.covariances,
        edge_residuals: edges
            .iter()
            .map(|e| {
                let d = e.i_from_j.inverse() * (s.poses[e.i].inverse() * s.poses[e.j]);
                (d.rotation.angle().to_degrees(), d.translation.vector.norm())
            })
            .collect(),
        edges: edges.to_vec(),
        paint: paint_stats,
    })
}

/// Refuses a drive that does not lie on the layout: an INS without a CRS header is taken to be
/// in the layout's CRS, and a wrong guess would otherwise give a silently wrong map.
fn check_overlap(drive: &Drive, layout: &RoadLayout) -> Result<(), RegisterError> {
    let pts: Vec<[f64; 2]> =
        layout.geometries().iter().flat_map(|(_, _, p)| p.iter().map(|q| [q.x, q.y])).collect();
    if pts.is_empty() {
        return Ok(());
    }
    let lo = [0, 1].map(|a| pts.iter().map(|p| p[a]).fold(f64::INFINITY, f64::min));
    let hi = [0, 1].map(|a| pts.iter().map(|p| p[a]).fold(f64::NEG_INFINITY, f64::max));
    let outside = |x: f64, a: usize| (lo[a] - x).max(x - hi[a]).max(0.0);
    let far: Vec<f64> = drive
        .scans
        .iter()
        .map(|(_, s)| {
            let t = s.world_from_lidar.translation.vector;
            outside(t.x, 0).hypot(outside(t.y, 1))
        })
        .collect();
    let beyond = far.iter().filter(|d| **d > 500.0).count();
    if beyond * 2 > far.len() {
        let mut sorted = far.clone();
        sorted.sort_by(f64::total_cmp);
        return Err(RegisterError::Input {
            path: drive.ins_path.display().to_string(),
            message: format!(
                "{beyond} of {} keyframes lie more than 500 m outside the layout's extent (median {:.1} km, \
                 layout in EPSG:{}): is the INS in another CRS?",
                far.len(),
                sorted[sorted.len() / 2] / 1000.0,
                layout.origin.epsg
            ),
        });
    }
    Ok(())
}

/// Each keyframe's marking points (at the graph-local poses `current`, origin `o`) against
/// the layout's paint within `gate_m`: (keyframe, LiDAR point, hit in absolute coordinates).
fn associate(
    index: &PaintModel,
    paint_pts: &[Vec<[f64; 3]>],
    current: &[Isometry3<f64>],
    o: hdmap_core::nalgebra::Vector3<f64>,
    gate_m: f64,
) -> Vec<(usize, [f64; 3], PaintHit)> {
    paint_pts
        .par_iter()
        .enumerate()
        .flat_map_iter(|(k, pts)| {
            pts.iter().filter_map(move |p| {
                let w = current[k] * Point3::from(*p);
                let h = index.query([w.x + o.x, w.y + o.y], gate_m)?;
                let z = match h {
                    PaintHit::Inside { z } | PaintHit::Outside { z, .. } => z,
                };
                // Paint lies on the road: a bright point far above or below it is something else.
                ((w.z + o.z - z).abs() <= (2.0 * gate_m).max(0.15)).then_some((k, *p, h))
            })
        })
        .collect()
}

/// Coarse GNSS correction before the fine association: for each keyframe, the horizontal
/// shift within ±`coarse_search_m` that puts most marking points of it and its neighbours
/// (±5 keyframes) on the layout's paint, then the height shift that puts them at the paint's
/// height (median), both median-filtered along the drive and applied to `poses` (graph-local,
/// origin `o`).
fn coarse_paint_offsets(
    poses: &mut [Isometry3<f64>],
    paint_pts: &[Vec<[f64; 3]>],
    model: &PaintModel,
    o: hdmap_core::nalgebra::Vector3<f64>,
    cfg: &RegisterConfig,
) {
    let n = poses.len();
    let world: Vec<Vec<[f64; 3]>> = (0..n)
        .map(|k| {
            paint_pts[k]
                .iter()
                .map(|p| {
                    let w = poses[k] * Point3::from(*p);
                    [w.x + o.x, w.y + o.y, w.z + o.z]
                })
                .collect()
        })
        .collect();
    if world.iter().all(|w| w.is_empty()) {
        return;
    }
    let mask = crate::anchor::PaintMask::new(model, 0.05, 0.05);
    let window = |k: usize| k.saturating_sub(5)..(k + 6).min(n);
    let offsets: Vec<Option<[f64; 3]>> = (0..n)
        .into_par_iter()
        .map(|k| {
            let pts: Vec<[f64; 3]> = world[window(k)].iter().flatten().copied().collect();
            if pts.len() < 30 {
                return None;
            }
            let xy: Vec<[f64; 2]> = pts.iter().map(|p| [p[0], p[1]]).collect();
            let (c, _) = mask.best_offset(&xy, cfg.coarse_search_m, 0.2)?;
            let (f, _) = mask.best_offset(
                &xy.iter().map(|p| [p[0] + c[0], p[1] + c[1]]).collect::<Vec<_>>(),
                0.2,
                0.05,
            )?;
            let (dx, dy) = (c[0] + f[0], c[1] + f[1]);
            let mut dz: Vec<f64> = pts
                .iter()
                .filter(|p| mask.hit(p[0] + dx, p[1] + dy))
                .filter_map(|p| model.height([p[0] + dx, p[1] + dy]).map(|z| z - p[2]))
                .collect();
            let dz = median(&mut dz)?;
            Some([dx, dy, dz])
        })
        .collect();
    for k in 0..n {
        let xs: Vec<[f64; 3]> = offsets[window(k)].iter().flatten().copied().collect();
        for axis in 0..3 {
            let mut v: Vec<f64> = xs.iter().map(|x| x[axis]).collect();
            if let Some(d) = median(&mut v) {
                poses[k].translation.vector[axis] += d;
            }
        }
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let m = v.len() / 2;
    Some(*v.select_nth_unstable_by(m, f64::total_cmp).1)
}

/// Absolute trajectory error of `estimate` against a true `world_from_lidar` trajectory:
/// (RMSE, max) of position error in m, horizontal and 3D.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Ate {
    /// Horizontal RMSE, m.
    pub rmse_xy_m: f64,
    /// Horizontal max, m.
    pub max_xy_m: f64,
    /// 3D RMSE, m.
    pub rmse_m: f64,
    /// 3D max, m.
    pub max_m: f64,
    /// Mean rotation error, degrees.
    pub mean_rot_deg: f64,
}

/// ATE of poses at stamps against a truth trajectory (interpolated at each stamp).
pub fn ate(stamps_ns: &[i64], estimate: &[Isometry3<f64>], truth: &Trajectory) -> Result<Ate, RegisterError> {
    let mut s_xy = 0.0;
    let mut s3 = 0.0;
    let (mut m_xy, mut m3, mut rot) = (0.0f64, 0.0f64, 0.0);
    let (first, last) = truth.span_ns();
    for (t, e) in stamps_ns.iter().zip(estimate) {
        // f64 Unix seconds carry ~0.2 µs of rounding: clamp within 1 µs of the ends.
        let t = if (first - 1000..first).contains(t) {
            first
        } else if (last + 1..=last + 1000).contains(t) {
            last
        } else {
            *t
        };
        let g = truth.interpolate(t)?;
        let d = e.translation.vector - g.translation.vector;
        let xy = d.x.hypot(d.y);
        s_xy += xy * xy;
        s3 += d.norm_squared();
        m_xy = m_xy.max(xy);
        m3 = m3.max(d.norm());
        rot += e.rotation.angle_to(&g.rotation).to_degrees();
    }
    let n = stamps_ns.len().max(1) as f64;
    Ok(Ate {
        rmse_xy_m: (s_xy / n).sqrt(),
        max_xy_m: m_xy,
        rmse_m: (s3 / n).sqrt(),
        max_m: m3,
        mean_rot_deg: rot / n,
    })
}

/// The registration as a `world_from_lidar0` trajectory in the INS's CRS.
pub fn trajectory(reg: &Registration, drive: &Drive) -> Result<Trajectory, RegisterError> {
    let poses = reg
        .stamps_ns
        .iter()
        .zip(&reg.world_from_lidar)
        .map(|(s, t)| StampedPose { stamp_ns: *s, target_from_source: *t })
        .collect();
    let mut t = Trajectory::new(FrameId::World, LIDAR, poses)?;
    t.origin = drive.ins.trajectory.origin.clone();
    t.origin_relative = drive.ins.trajectory.origin_relative;
    Ok(t)
}
