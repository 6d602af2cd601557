//! The localization check: a held-out drive localized against the exported NDT layer.
//!
//! * [`NdtGrid`]: the layer's voxels as information matrices, at the map's resolution or merged
//!   into coarser voxels (exact pooled moments from each voxel's count, mean and covariance).
//! * [`align`]: point-to-distribution NDT (each scan point against the best of the
//!   distributions of its voxel and the six face neighbours, Mahalanobis gate, Cauchy weights),
//!   Levenberg–Marquardt on SE(3).
//! * [`track`]: scan by scan, from the previous result moved by the INS's relative motion (a
//!   coarse GNSS/INS pose for the first scan and after a failure), coarse to fine.
//! * [`score`]: errors against ground truth — RMSE, and the share within 0.1 m / 0.5°.
//! * [`visual`]: camera-only localization against the visual layer (matching, PnP RANSAC,
//!   refinement) and recall at the kapture/Aachen thresholds.

pub mod visual;

use hdmap_core::pose::{exp_se3, skew};
use std::collections::HashMap;

use hdmap_core::nalgebra::{Isometry3, Matrix3, Matrix6, Vector3, Vector6};
use hdmap_io::ndt::NdtMap;
use rayon::prelude::*;

/// Errors of the localization check.
#[derive(Debug, thiserror::Error)]
pub enum LocalizeError {
    /// A setting out of range.
    #[error("localize config: {0}")]
    Config(String),
    /// Unusable input.
    #[error("{0}")]
    Input(String),
}

/// Settings of the check.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalizeConfig {
    /// Voxel sizes when starting from the GNSS/INS pose (coarse to fine), m; each is a multiple
    /// of the map's voxel.
    pub cold_levels_m: Vec<f64>,
    /// Voxel sizes when tracking from the previous scan, m.
    pub tracking_levels_m: Vec<f64>,
    /// Scan points are thinned to one per voxel of this size, m.
    pub scan_voxel_m: f64,
    /// Scan points farther than this from the sensor are not used, m.
    pub max_range_m: f64,
    /// Iteration cap per level.
    pub max_iterations: usize,
    /// A scan is localized when at least this share of its points matches a distribution.
    pub min_inlier_share: f64,
}

impl Default for LocalizeConfig {
    fn default() -> Self {
        Self {
            cold_levels_m: vec![4.0, 2.0, 1.0],
            tracking_levels_m: vec![2.0, 1.0],
            scan_voxel_m: 0.5,
            max_range_m: 60.0,
            max_iterations: 30,
            min_inlier_share: 0.5,
        }
    }
}

impl LocalizeConfig {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), String> {
        if self.cold_levels_m.is_empty() || self.tracking_levels_m.is_empty() {
            return Err("cold_levels_m and tracking_levels_m need at least one voxel size".into());
        }
        for v in self
            .cold_levels_m
            .iter()
            .chain(&self.tracking_levels_m)
            .chain([&self.scan_voxel_m, &self.max_range_m])
        {
            if !(v.is_finite() && *v > 0.0) {
                return Err(format!("voxel sizes and ranges must be positive, got {v}"));
            }
        }
        if !(0.0..=1.0).contains(&self.min_inlier_share) || self.max_iterations == 0 {
            return Err("min_inlier_share must lie in [0, 1] and max_iterations be positive".into());
        }
        Ok(())
    }
}

/// One voxel ready for matching.
#[derive(Debug, Clone, Copy)]
struct Dist {
    mean: Vector3<f64>,
    info: Matrix3<f64>,
}

/// The NDT layer at one resolution.
#[derive(Debug, Clone)]
pub struct NdtGrid {
    voxel_m: f64,
    cells: HashMap<[i64; 3], Dist>,
}

impl NdtGrid {
    /// The map's voxels merged into voxels of `voxel_m` (a multiple of the map's, or equal).
    pub fn new(map: &NdtMap, voxel_m: f64) -> Result<Self, LocalizeError> {
        let ratio = voxel_m / map.voxel_size_m;
        if !(ratio.is_finite() && ratio >= 1.0 - 1e-9 && (ratio - ratio.round()).abs() < 1e-6) {
            return Err(LocalizeError::Config(format!(
                "voxel {voxel_m} m is not a multiple of the map's {} m",
                map.voxel_size_m
            )));
        }
        // Pooled moments: Σn, Σn·μ, Σ((n−1)·C + n·μμᵀ).
        let mut acc: HashMap<[i64; 3], (f64, Vector3<f64>, Matrix3<f64>)> = HashMap::new();
        for c in &map.cells {
            let key = c.mean.map(|v| (v / voxel_m).floor() as i64);
            let n = f64::from(c.count);
            let m = Vector3::from(c.mean);
            let cov = Matrix3::new(
                c.cov[0], c.cov[1], c.cov[2], c.cov[1], c.cov[3], c.cov[4], c.cov[2], c.cov[4], c.cov[5],
            );
            let e = acc.entry(key).or_insert((0.0, Vector3::zeros(), Matrix3::zeros()));
            e.0 += n;
            e.1 += n * m;
            e.2 += (n - 1.0) * cov + n * m * m.transpose();
        }
        let cells = acc
            .into_iter()
            .filter_map(|(k, (n, s, q))| {
                let mean = s / n;
                let cov = (q - n * mean * mean.transpose()) / (n - 1.0).max(1.0);
                let e = cov.symmetric_eigen();
                let top = e.eigenvalues.max().max(1e-4);
                let vals = e.eigenvalues.map(|l| 1.0 / l.max(0.01 * top).max(1e-4));
                let info = e.eigenvectors * Matrix3::from_diagonal(&vals) * e.eigenvectors.transpose();
                info.iter().all(|v| v.is_finite()).then_some((k, Dist { mean, info }))
            })
            .collect();
        Ok(Self { voxel_m, cells })
    }

    /// Voxels.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// True without voxels.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The best distribution for a map-frame point: smallest Mahalanobis distance among its
    /// voxel and the six face neighbours, within `gate2`.
    fn best(&self, q: &Vector3<f64>, gate2: f64) -> Option<(Dist, f64)> {
        let k = [q.x, q.y, q.z].map(|v| (v / self.voxel_m).floor() as i64);
        const NB: [[i64; 3]; 7] =
            [[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]];
        let mut best: Option<(Dist, f64)> = None;
        for d in NB {
            if let Some(c) = self.cells.get(&[k[0] + d[0], k[1] + d[1], k[2] + d[2]]) {
                let e = q - c.mean;
                let m2 = e.dot(&(c.info * e));
                if m2 <= gate2 && best.is_none_or(|b| m2 < b.1) {
                    best = Some((*c, m2));
                }
            }
        }
        best
    }
}

/// The outcome of [`align`].
#[derive(Debug, Clone)]
pub struct Alignment {
    /// `map_from_lidar`.
    pub map_from_lidar: Isometry3<f64>,
    /// Iterations run.
    pub iterations: usize,
    /// Points matched to a distribution at the end.
    pub inliers: usize,
    /// Share of the scan's points matched.
    pub inlier_share: f64,
}

/// Mahalanobis gate (χ² with 3 degrees of freedom at 99.9 %) and Cauchy scale, squared.
const GATE2: f64 = 16.27;
const CAUCHY2: f64 = 4.0;

/// Cost, normal equations and inliers at pose `t`.
fn linearise(
    grid: &NdtGrid,
    pts: &[Vector3<f64>],
    t: &Isometry3<f64>,
) -> (f64, Matrix6<f64>, Vector6<f64>, usize) {
    let r = t.rotation.to_rotation_matrix().into_inner();
    let total = pts
        .par_chunks(256)
        .map(|chunk| {
            let mut acc = (0.0, Matrix6::zeros(), Vector6::zeros(), 0usize);
            for p in chunk {
                let q = (t * nalgebra_point(p)).coords;
                let Some((d, m2)) = grid.best(&q, GATE2) else { continue };
                let e = q - d.mean;
                let w = 1.0 / (1.0 + m2 / CAUCHY2);
                // e(δ) = T·exp(δ)·p − μ: ∂e/∂ω = −R[p]×, ∂e/∂v = R.
                let mut j = hdmap_core::nalgebra::Matrix3x6::zeros();
                j.fixed_view_mut::<3, 3>(0, 0).copy_from(&(-r * skew(p)));
                j.fixed_view_mut::<3, 3>(0, 3).copy_from(&r);
                let jt_info = j.transpose() * d.info * w;
                acc.0 += CAUCHY2 * (1.0 + m2 / CAUCHY2).ln();
                acc.1 += jt_info * j;
                acc.2 += jt_info * e;
                acc.3 += 1;
            }
            acc
        })
        .collect::<Vec<_>>()
        .into_iter()
        .fold((0.0, Matrix6::zeros(), Vector6::zeros(), 0), |a, b| {
            (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3)
        });
    // An unmatched point costs as much as one at the gate: losing matches is no gain.
    let unmatched = (pts.len() - total.3) as f64 * CAUCHY2 * (1.0 + GATE2 / CAUCHY2).ln();
    (total.0 + unmatched, total.1, total.2, total.3)
}

fn nalgebra_point(p: &Vector3<f64>) -> hdmap_core::nalgebra::Point3<f64> {
    hdmap_core::nalgebra::Point3::from(*p)
}

/// Aligns scan points (LiDAR frame) to one grid from `init` (`map_from_lidar`).
pub fn align(
    grid: &NdtGrid,
    pts: &[Vector3<f64>],
    init: &Isometry3<f64>,
    max_iterations: usize,
) -> Alignment {
    let mut t = *init;
    let (mut cost, mut h, mut b, mut inl) = linearise(grid, pts, &t);
    let mut lambda = 1e-3;
    let mut iterations = 0;
    while iterations < max_iterations && inl >= 6 {
        iterations += 1;
        let mut stepped = false;
        for _ in 0..8 {
            let damped = h + Matrix6::from_diagonal(&h.diagonal()) * lambda;
            let Some(delta) = damped.cholesky().map(|c| c.solve(&(-b))) else {
                lambda *= 10.0;
                continue;
            };
            let cand = t * exp_se3(&delta);
            let (c2, h2, b2, i2) = linearise(grid, pts, &cand);
            if c2 <= cost {
                (t, cost, h, b, inl) = (cand, c2, h2, b2, i2);
                lambda = (lambda / 10.0).max(1e-7);
                stepped = true;
                if delta.fixed_rows::<3>(0).norm() < 1e-5 && delta.fixed_rows::<3>(3).norm() < 1e-4 {
                    return Alignment {
                        map_from_lidar: t,
                        iterations,
                        inliers: inl,
                        inlier_share: inl as f64 / pts.len().max(1) as f64,
                    };
                }
                break;
            }
            lambda *= 10.0;
        }
        if !stepped {
            break;
        }
    }
    Alignment {
        map_from_lidar: t,
        iterations,
        inliers: inl,
        inlier_share: inl as f64 / pts.len().max(1) as f64,
    }
}

/// One scan to localize.
#[derive(Debug, Clone)]
pub struct ScanInput {
    /// Scan stamp (LiDAR clock), ns.
    pub stamp_ns: i64,
    /// Deskewed points in the LiDAR frame.
    pub points_lidar: Vec<[f64; 3]>,
    /// `map_from_lidar` from the GNSS/INS (the coarse prior).
    pub prior_map_from_lidar: Isometry3<f64>,
}

/// One localized scan.
#[derive(Debug, Clone)]
pub struct Localized {
    /// Scan stamp, ns.
    pub stamp_ns: i64,
    /// `map_from_lidar` found (the prior where localization failed).
    pub map_from_lidar: Isometry3<f64>,
    /// Share of points matched at the finest level.
    pub inlier_share: f64,
    /// Whether the scan localized (enough matches).
    pub ok: bool,
    /// Whether it started from the GNSS/INS prior (first scan, or after a failure).
    pub cold_start: bool,
}

/// Points within range, one per `voxel` (the centroid of each occupied voxel, voxel order).
pub fn thin(points: &[[f64; 3]], voxel: f64, max_range_m: f64) -> Vec<Vector3<f64>> {
    let mut acc: HashMap<[i64; 3], (Vector3<f64>, f64)> = HashMap::new();
    for p in points {
        let v = Vector3::from(*p);
        if !(v.iter().all(|x| x.is_finite()) && v.norm() <= max_range_m) {
            continue;
        }
        let e = acc.entry(p.map(|x| (x / voxel).floor() as i64)).or_insert((Vector3::zeros(), 0.0));
        e.0 += v;
        e.1 += 1.0;
    }
    let mut out: Vec<([i64; 3], Vector3<f64>)> = acc.into_iter().map(|(k, (s, n))| (k, s / n)).collect();
    out.sort_by_key(|(k, _)| *k);
    out.into_iter().map(|(_, v)| v).collect()
}

/// Localizes `scans` (in time order) against `map`.
pub fn track(
    map: &NdtMap,
    scans: &[ScanInput],
    cfg: &LocalizeConfig,
) -> Result<Vec<Localized>, LocalizeError> {
    cfg.validate().map_err(LocalizeError::Config)?;
    if map.cells.is_empty() {
        return Err(LocalizeError::Input("the NDT map has no voxels".into()));
    }
    let mut grids: HashMap<u64, NdtGrid> = HashMap::new();
    for v in cfg.cold_levels_m.iter().chain(&cfg.tracking_levels_m) {
        if let std::collections::hash_map::Entry::Vacant(e) = grids.entry(v.to_bits()) {
            e.insert(NdtGrid::new(map, *v)?);
        }
    }
    let mut out: Vec<Localized> = Vec::with_capacity(scans.len());
    let mut last: Option<(Isometry3<f64>, Isometry3<f64>)> = None; // (prior, found) of the last good scan
    for s in scans {
        let pts = thin(&s.points_lidar, cfg.scan_voxel_m, cfg.max_range_m);
        let run = |init: Isometry3<f64>, levels: &[f64]| {
            let mut t = init;
            let mut a = None;
            for v in levels {
                let r = align(&grids[&v.to_bits()], &pts, &t, cfg.max_iterations);
                t = r.map_from_lidar;
                a = Some(r);
            }
            a
        };
        let mut cold_start = last.is_none();
        let init = match &last {
            Some((prior, found)) => found * prior.inverse() * s.prior_map_from_lidar,
            None => s.prior_map_from_lidar,
        };
        let mut a = run(init, if cold_start { &cfg.cold_levels_m } else { &cfg.tracking_levels_m });
        if !cold_start && a.as_ref().is_none_or(|a| a.inlier_share < cfg.min_inlier_share) {
            cold_start = true;
            a = run(s.prior_map_from_lidar, &cfg.cold_levels_m);
        }
        let (pose, share) = a.map_or((s.prior_map_from_lidar, 0.0), |a| (a.map_from_lidar, a.inlier_share));
        let ok = share >= cfg.min_inlier_share && !pts.is_empty();
        if ok {
            last = Some((s.prior_map_from_lidar, pose));
        } else {
            last = None;
        }
        out.push(Localized {
            stamp_ns: s.stamp_ns,
            map_from_lidar: if ok { pose } else { s.prior_map_from_lidar },
            inlier_share: share,
            ok,
            cold_start,
        });
    }
    Ok(out)
}

/// Errors of localized poses against ground truth.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Score {
    /// Scans scored (with a truth pose).
    pub scans: usize,
    /// Scans that localized.
    pub localized: usize,
    /// RMSE of the 3D position, m.
    pub rmse_m: f64,
    /// RMSE of the horizontal position, m.
    pub rmse_xy_m: f64,
    /// Largest position error, m.
    pub max_m: f64,
    /// Mean rotation error, degrees.
    pub mean_rot_deg: f64,
    /// Share of scans within 0.1 m and 0.5° (failed scans count as outside).
    pub within_10cm_05deg: f64,
    /// The same for the GNSS/INS prior alone.
    pub prior_within_10cm_05deg: f64,
    /// RMSE of the GNSS/INS prior, m.
    pub prior_rmse_m: f64,
}

/// Scores `found` against `truth` (`map_from_lidar` per scan, same order) and the priors.
pub fn score(found: &[Localized], priors: &[Isometry3<f64>], truth: &[Isometry3<f64>]) -> Score {
    let n = found.len().min(truth.len()).min(priors.len());
    let err = |a: &Isometry3<f64>, b: &Isometry3<f64>| {
        let d = a.translation.vector - b.translation.vector;
        (d.norm(), d.xy().norm(), (a.rotation.inverse() * b.rotation).angle().to_degrees())
    };
    let (mut s2, mut sxy, mut mx, mut rot, mut within, mut p2, mut pwithin) =
        (0.0, 0.0, 0.0f64, 0.0, 0, 0.0, 0);
    for k in 0..n {
        let (e, exy, r) = err(&found[k].map_from_lidar, &truth[k]);
        s2 += e * e;
        sxy += exy * exy;
        mx = mx.max(e);
        rot += r;
        if found[k].ok && e <= 0.1 && r <= 0.5 {
            within += 1;
        }
        let (pe, _, pr) = err(&priors[k], &truth[k]);
        p2 += pe * pe;
        if pe <= 0.1 && pr <= 0.5 {
            pwithin += 1;
        }
    }
    let nf = n.max(1) as f64;
    Score {
        scans: n,
        localized: found[..n].iter().filter(|f| f.ok).count(),
        rmse_m: (s2 / nf).sqrt(),
        rmse_xy_m: (sxy / nf).sqrt(),
        max_m: mx,
        mean_rot_deg: rot / nf,
        within_10cm_05deg: within as f64 / nf,
        prior_within_10cm_05deg: pwithin as f64 / nf,
        prior_rmse_m: (p2 / nf).sqrt(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdmap_core::{GeoOrigin, VerticalDatum};
    use rand::{Rng, SeedableRng};

    /// A street-like scene: ground, two facades with windows (steps), poles.
    fn scene(rng: &mut rand_chacha::ChaCha8Rng) -> Vec<[f64; 3]> {
        let mut pts = Vec::new();
        for _ in 0..60_000 {
            let x: f64 = rng.random_range(-40.0..40.0);
            match rng.random_range(0..4) {
                0 | 1 => pts.push([x, rng.random_range(-9.0..9.0), rng.random_range(-0.02..0.02)]),
                2 => {
                    let inset = if (x * 0.5).rem_euclid(2.0) < 1.0 { 0.3 } else { 0.0 };
                    pts.push([x, 9.0 + inset, rng.random_range(0.0..8.0)])
                }
                _ => pts.push([x, -9.0, rng.random_range(0.0..6.0)]),
            }
        }
        for k in 0..12 {
            let px = -35.0 + 6.3 * k as f64;
            for _ in 0..300 {
                let a = rng.random_range(0.0..std::f64::consts::TAU);
                pts.push([px + 0.1 * a.cos(), 5.0 + 0.1 * a.sin(), rng.random_range(0.0..6.0)]);
            }
        }
        pts
    }

    #[test]
    fn a_scan_moved_off_its_pose_comes_back() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let origin = GeoOrigin { epsg: 5186, origin: [0.0; 3], vertical_datum: VerticalDatum::Kngeoid18 };
        // The map from one sampling of the scene, the scan from another (seen from the sensor).
        let map_pts = scene(&mut rng);
        let map = hdmap_features_like_build(&map_pts, origin);
        let truth = Isometry3::new(Vector3::new(3.0, -1.0, 1.8), Vector3::new(0.0, 0.0, 0.3));
        let scan: Vec<[f64; 3]> = scene(&mut rng)
            .iter()
            .filter(|p| (p[0] - 3.0).hypot(p[1] + 1.0) < 35.0)
            .map(|p| {
                let q = truth.inverse() * hdmap_core::nalgebra::Point3::from(*p);
                [q.x, q.y, q.z]
            })
            .collect();
        let cfg = LocalizeConfig::default();
        for (k, off) in [(0, [1.2, -0.8, 0.3, 0.04]), (1, [-0.6, 1.0, -0.2, -0.03])] {
            let prior =
                Isometry3::new(Vector3::new(off[0], off[1], off[2]), Vector3::new(0.0, 0.0, off[3])) * truth;
            let found = track(
                &map,
                &[ScanInput { stamp_ns: k, points_lidar: scan.clone(), prior_map_from_lidar: prior }],
                &cfg,
            )
            .expect("track");
            let d = truth.inverse() * found[0].map_from_lidar;
            eprintln!(
                "start {off:?}: {:.3} m / {:.3}°, inliers {:.2}",
                d.translation.vector.norm(),
                d.rotation.angle().to_degrees(),
                found[0].inlier_share
            );
            assert!(found[0].ok);
            assert!(d.translation.vector.norm() < 0.05 && d.rotation.angle().to_degrees() < 0.2, "{d:?}");
        }
    }

    /// The layer built as hdmap-features does (1 m voxels, moments), without depending on it.
    fn hdmap_features_like_build(pts: &[[f64; 3]], origin: GeoOrigin) -> NdtMap {
        let mut acc: HashMap<[i64; 3], Vec<Vector3<f64>>> = HashMap::new();
        for p in pts {
            acc.entry(p.map(|v| v.floor() as i64)).or_default().push(Vector3::from(*p));
        }
        let cells = acc
            .values()
            .filter(|v| v.len() >= 6)
            .map(|v| {
                let n = v.len() as f64;
                let m = v.iter().sum::<Vector3<f64>>() / n;
                let c = v.iter().map(|p| (p - m) * (p - m).transpose()).sum::<Matrix3<f64>>() / (n - 1.0);
                hdmap_io::ndt::NdtCell {
                    mean: [m.x, m.y, m.z],
                    cov: [c[(0, 0)], c[(0, 1)], c[(0, 2)], c[(1, 1)], c[(1, 2)], c[(2, 2)]],
                    count: v.len() as u32,
                }
            })
            .collect();
        NdtMap { origin, voxel_size_m: 1.0, cells }
    }

    #[test]
    fn coarse_grids_pool_moments_exactly() {
        let origin = GeoOrigin { epsg: 5186, origin: [0.0; 3], vertical_datum: VerticalDatum::Kngeoid18 };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let pts: Vec<[f64; 3]> = (0..4000)
            .map(|_| [rng.random_range(0.0..2.0), rng.random_range(0.0..2.0), rng.random_range(0.0..2.0)])
            .collect();
        let map = hdmap_features_like_build(&pts, origin);
        let g = NdtGrid::new(&map, 2.0).expect("grid");
        assert_eq!(g.len(), 1);
        let d = g.cells.values().next().expect("cell");
        let n = pts.len() as f64;
        let mean = pts.iter().map(|p| Vector3::from(*p)).sum::<Vector3<f64>>() / n;
        assert!((d.mean - mean).norm() < 1e-12);
        let cov = pts
            .iter()
            .map(|p| (Vector3::from(*p) - mean) * (Vector3::from(*p) - mean).transpose())
            .sum::<Matrix3<f64>>()
            / (n - 1.0);
        let info = cov.try_inverse().expect("invertible");
        assert!((d.info - info).norm() < 1e-9 * info.norm(), "{} vs {}", d.info, info);
        assert!(NdtGrid::new(&map, 1.5).is_err(), "not a multiple");
    }
}
