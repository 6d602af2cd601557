//! LiDAR–LiDAR registration from a rough extrinsic (two LiDARs of one rig, or two passes):
//! the ground planes first (roll, pitch and height; a tilted side LiDAR can be 45° off a
//! level guess), then a sweep of the rotation about the ground normal scored by overlap,
//! then GICP with shrinking correspondence distances.

use hdmap_core::nalgebra::{Isometry3, Translation3, Unit, UnitQuaternion, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::RegisterError;
use crate::gicp::{GicpCloud, GicpConfig, GicpResult, align, overlap, voxel_downsample};

/// Settings of [`register_pair`].
#[derive(Debug, Clone)]
pub struct PairConfig {
    /// Voxel size of both clouds, m.
    pub voxel_size_m: f64,
    /// Neighbours for covariances.
    pub k_neighbours: usize,
    /// RANSAC: a point within this distance of a plane supports it, m.
    pub plane_tolerance_m: f64,
    /// RANSAC hypotheses.
    pub ransac_iterations: usize,
    /// The source ground normal, rotated by the initial guess, must lie within this angle of
    /// the target's, degrees (how wrong the guess may be).
    pub max_tilt_error_deg: f64,
    /// Half-range and step of the sweep about the ground normal, degrees.
    pub yaw_search_deg: (f64, f64),
    /// Correspondence distances of the successive GICP stages, m.
    pub stages_m: Vec<f64>,
    /// Overlap radius of the sweep score, m.
    pub overlap_radius_m: f64,
    /// Seed of the RANSAC sampler.
    pub seed: u64,
}

impl Default for PairConfig {
    fn default() -> Self {
        Self {
            voxel_size_m: 0.2,
            k_neighbours: 20,
            plane_tolerance_m: 0.05,
            ransac_iterations: 400,
            max_tilt_error_deg: 60.0,
            yaw_search_deg: (20.0, 2.0),
            stages_m: vec![1.0, 0.5, 0.25],
            overlap_radius_m: 0.3,
            seed: 7,
        }
    }
}

impl PairConfig {
    /// Checks that every setting is usable: a message naming the first that is not.
    pub fn validate(&self) -> Result<(), String> {
        use crate::positive as pos;
        pos("voxel_size_m", self.voxel_size_m)?;
        pos("plane_tolerance_m", self.plane_tolerance_m)?;
        pos("max_tilt_error_deg", self.max_tilt_error_deg)?;
        pos("yaw_search_deg step", self.yaw_search_deg.1)?;
        pos("overlap_radius_m", self.overlap_radius_m)?;
        if !(self.yaw_search_deg.0.is_finite() && (0.0..=180.0).contains(&self.yaw_search_deg.0)) {
            return Err(format!(
                "yaw_search_deg half-range = {}: must be in [0, 180]",
                self.yaw_search_deg.0
            ));
        }
        if self.k_neighbours < 3 || self.ransac_iterations == 0 {
            return Err("k_neighbours must be ≥ 3 and ransac_iterations ≥ 1".into());
        }
        if self.stages_m.is_empty() || self.stages_m.iter().any(|m| !(m.is_finite() && *m > 0.0)) {
            return Err(format!("stages_m = {:?}: needs at least one positive distance", self.stages_m));
        }
        Ok(())
    }
}

/// The result of [`register_pair`].
#[derive(Debug, Clone)]
pub struct PairResult {
    /// `target_from_source`.
    pub target_from_source: Isometry3<f64>,
    /// After the ground alignment (before the sweep).
    pub ground_aligned: Isometry3<f64>,
    /// Rotation about the ground normal the sweep chose, degrees.
    pub sweep_deg: f64,
    /// Share of source points within the overlap radius of the target at the end.
    pub overlap: f64,
    /// The last GICP stage.
    pub gicp: GicpResult,
}

/// The dominant plane of `points`, oriented so that the sensor (the origin) is on its positive
/// side: (unit normal n, offset d) with n·p + d = 0 on the plane and d > 0. `accept` filters
/// candidate normals.
fn dominant_plane(
    points: &[[f64; 3]],
    cfg: &PairConfig,
    accept: impl Fn(&Vector3<f64>) -> bool,
) -> Option<(Vector3<f64>, f64)> {
    if points.len() < 3 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let v = |i: usize| Vector3::from(points[i]);
    let mut best: Option<(usize, Vector3<f64>, f64)> = None;
    for _ in 0..cfg.ransac_iterations {
        let (a, b, c) = (
            rng.random_range(0..points.len()),
            rng.random_range(0..points.len()),
            rng.random_range(0..points.len()),
        );
        let n = (v(b) - v(a)).cross(&(v(c) - v(a)));
        if n.norm() < 1e-6 {
            continue;
        }
        let mut n = n.normalize();
        let mut d = -n.dot(&v(a));
        if d < 0.0 {
            n = -n;
            d = -d;
        }
        if !accept(&n) {
            continue;
        }
        let support =
            points.iter().filter(|p| (n.dot(&Vector3::from(**p)) + d).abs() <= cfg.plane_tolerance_m).count();
        if best.as_ref().is_none_or(|b| support > b.0) {
            best = Some((support, n, d));
        }
    }
    let (_, n, d) = best?;
    // Refine on the inliers (least squares: the smallest-eigenvalue direction).
    let inl: Vec<Vector3<f64>> = points
        .iter()
        .map(|p| Vector3::from(*p))
        .filter(|p| (n.dot(p) + d).abs() <= cfg.plane_tolerance_m)
        .collect();
    let c = inl.iter().sum::<Vector3<f64>>() / inl.len() as f64;
    let cov =
        inl.iter().fold(hdmap_core::nalgebra::Matrix3::zeros(), |m, p| m + (p - c) * (p - c).transpose());
    let eig = cov.symmetric_eigen();
    let k = eig.eigenvalues.imin();
    let mut n2: Vector3<f64> = eig.eigenvectors.column(k).into_owned();
    if n2.dot(&n) < 0.0 {
        n2 = -n2;
    }
    Some((n2, -n2.dot(&c)))
}

/// Registers `source` onto `target` starting from a rough `init_target_from_source`.
pub fn register_pair(
    target_points: &[[f64; 3]],
    source_points: &[[f64; 3]],
    init_target_from_source: &Isometry3<f64>,
    cfg: &PairConfig,
) -> Result<PairResult, RegisterError> {
    cfg.validate().map_err(|m| RegisterError::Solver(format!("pair registration settings: {m}")))?;
    let tp = voxel_downsample(target_points, cfg.voxel_size_m);
    let sp = voxel_downsample(source_points, cfg.voxel_size_m);
    // The target's ground: the dominant plane within 60° of its own z axis (not a wall).
    let (n_t, d_t) = dominant_plane(&tp, cfg, |n| n.z.abs() >= 0.5)
        .ok_or_else(|| RegisterError::Solver("no ground plane in the target cloud".into()))?;
    let r0 = init_target_from_source.rotation;
    let max_cos = cfg.max_tilt_error_deg.to_radians().cos();
    let (n_s, d_s) = dominant_plane(&sp, cfg, |n| (r0 * n).dot(&n_t) >= max_cos).ok_or_else(|| {
        RegisterError::Solver(format!(
            "no plane in the source cloud within {}° of the target's ground under the initial extrinsic",
            cfg.max_tilt_error_deg
        ))
    })?;
    // Rotate the guessed source normal onto the target's, then slide along it so the planes meet.
    let fix = UnitQuaternion::rotation_between(&(r0 * n_s), &n_t).unwrap_or_else(UnitQuaternion::identity);
    let r1 = fix * r0;
    let t0 = init_target_from_source.translation.vector;
    let t1 = t0 + (d_s - d_t - n_t.dot(&t0)) * n_t;
    let ground_aligned = Isometry3::from_parts(Translation3::from(t1), r1);
    let target = GicpCloud::new(tp, cfg.k_neighbours)?;
    let source = GicpCloud::new(sp, cfg.k_neighbours)?;
    let first = GicpConfig {
        max_correspondence_m: cfg.stages_m.first().copied().unwrap_or(1.0),
        ..GicpConfig::default()
    };
    // Sweep about the ground normal through the source origin; keep the best overlap.
    let axis = Unit::new_normalize(n_t);
    let steps = (cfg.yaw_search_deg.0 / cfg.yaw_search_deg.1).round() as i64;
    let mut best: Option<(f64, f64, Isometry3<f64>)> = None;
    for s in -steps..=steps {
        let a = s as f64 * cfg.yaw_search_deg.1;
        let q = UnitQuaternion::from_axis_angle(&axis, a.to_radians());
        let cand = Isometry3::from_parts(Translation3::from(t1), q * r1);
        let r = align(&target, &source, &cand, &first);
        let score = overlap(&target, &source, &r.target_from_source, cfg.overlap_radius_m);
        tracing::debug!("sweep {a:+.0}°: overlap {score:.3}");
        if best.as_ref().is_none_or(|b| score > b.0) {
            best = Some((score, a, r.target_from_source));
        }
    }
    let (_, sweep_deg, mut t) = best.ok_or_else(|| RegisterError::Solver("empty sweep".into()))?;
    let mut last = None;
    for &m in &cfg.stages_m {
        let r = align(&target, &source, &t, &GicpConfig { max_correspondence_m: m, ..GicpConfig::default() });
        t = r.target_from_source;
        last = Some(r);
    }
    let gicp = last.ok_or_else(|| RegisterError::Solver("no GICP stage configured".into()))?;
    Ok(PairResult {
        target_from_source: t,
        ground_aligned,
        sweep_deg,
        overlap: overlap(&target, &source, &t, cfg.overlap_radius_m),
        gicp,
    })
}
