//! Target-based camera–LiDAR extrinsics: a chessboard seen by both sensors at several poses.
//!
//! The camera gives the board's pose (corners + intrinsics → planar PnP); the LiDAR gives the
//! points on the board. `camera_from_lidar` is the transform that puts every board point on
//! its board plane: point-to-plane least squares (Gauss–Newton, analytic Jacobian), board
//! points re-selected around the current estimate's board rectangle after each solve, and the
//! 6×6 covariance from the normal equations scaled by the residual variance.

use hdmap_core::camera::CameraIntrinsics;
use hdmap_core::nalgebra::{
    Isometry3, Matrix3, Matrix6, Point3, Rotation3, Translation3, UnitQuaternion, Vector3, Vector6,
};
use serde::Serialize;

use crate::CalibError;

/// A board pose from its detected corners and known intrinsics (planar PnP: homography
/// decomposition, then Gauss–Newton on the pixel reprojection error). `object` are the board
/// coordinates (m, z = 0) of `image`'s corners (px). Returns `camera_from_board` and the RMS
/// reprojection error in pixels.
pub fn board_pose(
    cam: &CameraIntrinsics,
    object: &[[f64; 2]],
    image: &[[f64; 2]],
) -> Result<(Isometry3<f64>, f64), CalibError> {
    if object.len() != image.len() || object.len() < 4 {
        return Err(CalibError::Degenerate(format!(
            "board pose needs ≥ 4 matched corners, got {} object / {} image",
            object.len(),
            image.len()
        )));
    }
    let normalized: Vec<[f64; 2]> = image.iter().map(|p| cam.undistort(p[0], p[1])).collect();
    let degenerate = || CalibError::Degenerate("board corners give no homography".into());
    if normalized.iter().flatten().chain(object.iter().flatten()).any(|x| !x.is_finite()) {
        return Err(degenerate());
    }
    let h = crate::intrinsics::homography(object, &normalized).ok_or_else(degenerate)?;
    if h.iter().any(|x| !x.is_finite()) || h.column(0).norm() < 1e-12 {
        return Err(degenerate());
    }
    let (h1, h2, h3) = (h.column(0).into_owned(), h.column(1).into_owned(), h.column(2).into_owned());
    let mut lambda = 1.0 / h1.norm();
    if (h3 * lambda).z < 0.0 {
        lambda = -lambda;
    }
    let (r1, r2) = (h1 * lambda, h2 * lambda);
    let r = Matrix3::from_columns(&[r1, r2, r1.cross(&r2)]);
    // The nearest rotation, closed form (SVD): no iteration to hang on a degenerate matrix.
    let svd = r.svd(true, true);
    let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else { return Err(degenerate()) };
    let fix = Matrix3::from_diagonal(&Vector3::new(1.0, 1.0, (u * v_t).determinant().signum()));
    let rot = UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(u * fix * v_t));
    let mut pose = Isometry3::from_parts(Translation3::from(h3 * lambda), rot);
    let residuals = |t: &Isometry3<f64>| -> Option<Vec<f64>> {
        let mut out = Vec::with_capacity(2 * object.len());
        for (o, i) in object.iter().zip(image) {
            let [u, v] = cam.project(&(t * Point3::new(o[0], o[1], 0.0)).coords)?;
            out.push(u - i[0]);
            out.push(v - i[1]);
        }
        Some(out)
    };
    let bad = || CalibError::Degenerate("board behind the camera".into());
    for _ in 0..20 {
        let r0 = residuals(&pose).ok_or_else(bad)?;
        // Numeric Jacobian of the pixel residuals in a left perturbation (t, r) of the pose.
        let mut jtj = Matrix6::zeros();
        let mut jtr = Vector6::zeros();
        let cols: Vec<Vec<f64>> = (0..6)
            .map(|k| {
                let mut d = Vector6::zeros();
                d[k] = 1e-6;
                let r = residuals(&(hdmap_core::pose::exp_left(&d) * pose)).ok_or_else(bad)?;
                Ok(r.iter().zip(&r0).map(|(a, b)| (a - b) / 1e-6).collect())
            })
            .collect::<Result<_, CalibError>>()?;
        for i in 0..r0.len() {
            for a in 0..6 {
                jtr[a] += cols[a][i] * r0[i];
                for b in 0..6 {
                    jtj[(a, b)] += cols[a][i] * cols[b][i];
                }
            }
        }
        let Some(step) = jtj.lu().solve(&(-jtr)) else { break };
        pose = hdmap_core::pose::exp_left(&step) * pose;
        if step.norm() < 1e-10 {
            break;
        }
    }
    let r = residuals(&pose).ok_or_else(bad)?;
    let rms = (r.iter().map(|x| x * x).sum::<f64>() / object.len() as f64).sqrt();
    Ok((pose, rms))
}

/// One board pose seen by both sensors.
#[derive(Debug, Clone)]
pub struct BoardView {
    /// Board pose from the camera ([`board_pose`]).
    pub camera_from_board: Isometry3<f64>,
    /// Inner corners per row (the board's extent, squares plus a one-square white margin, is
    /// two squares beyond the outer inner corners on every side).
    pub cols: usize,
    /// Inner corners per column.
    pub rows: usize,
    /// Square size, m.
    pub square_m: f64,
    /// The LiDAR scan taken with the image (LiDAR frame).
    pub points: Vec<[f64; 3]>,
}

/// A plane `n·x = d` in the camera frame.
type Plane = (Vector3<f64>, f64);

impl BoardView {
    /// The board's plane in the camera frame.
    fn plane(&self) -> Plane {
        let n = self.camera_from_board.rotation * Vector3::z();
        (n, n.dot(&self.camera_from_board.translation.vector))
    }

    /// LiDAR points (LiDAR frame) that `camera_from_lidar` puts on the board: inside its
    /// rectangle grown by `margin_m` and within `margin_m` of its plane.
    fn on_board(&self, camera_from_lidar: &Isometry3<f64>, margin_m: f64) -> Vec<Vector3<f64>> {
        let board_from_lidar = self.camera_from_board.inverse() * camera_from_lidar;
        let s = self.square_m;
        let (x0, x1) = (-2.0 * s - margin_m, (self.cols as f64 + 1.0) * s + margin_m);
        let (y0, y1) = (-2.0 * s - margin_m, (self.rows as f64 + 1.0) * s + margin_m);
        self.points
            .iter()
            .map(|p| Vector3::new(p[0], p[1], p[2]))
            .filter(|p| {
                let b = board_from_lidar * Point3::from(*p);
                b.x > x0 && b.x < x1 && b.y > y0 && b.y < y1 && b.z.abs() < margin_m
            })
            .collect()
    }
}

/// Point-to-plane normal equations `JᵀJ`, `Jᵀr`, `Σr²` and the point count at `t`, for a left
/// perturbation (translation, rotation) of `camera_from_lidar`.
fn normal_equations(
    sel: &[(Vec<Vector3<f64>>, Plane)],
    t: &Isometry3<f64>,
) -> (Matrix6<f64>, Vector6<f64>, f64, usize) {
    let (mut jtj, mut jtr, mut ss, mut n_obs) = (Matrix6::zeros(), Vector6::zeros(), 0.0, 0usize);
    for (pts, (n, d)) in sel {
        for p in pts {
            let q = t * Point3::from(*p);
            let r = n.dot(&q.coords) - d;
            let qn = q.coords.cross(n);
            let j = Vector6::new(n.x, n.y, n.z, qn.x, qn.y, qn.z);
            jtj += j * j.transpose();
            jtr += j * r;
            ss += r * r;
            n_obs += 1;
        }
    }
    (jtj, jtr, ss, n_obs)
}

/// What the target-based solve found.
#[derive(Debug, Clone, Serialize)]
pub struct TargetResult {
    /// The extrinsic.
    pub camera_from_lidar: Isometry3<f64>,
    /// Its covariance: (tx, ty, tz, rx, ry, rz), m² / rad², left perturbation — from the LiDAR
    /// range noise, conditional on the board poses (their PnP error is not propagated).
    pub covariance: [[f64; 6]; 6],
    /// RMS point-to-plane distance, m.
    pub rms_m: f64,
    /// Board points used per view.
    pub points_per_view: Vec<usize>,
}

/// Solves `camera_from_lidar` from board views, starting at `guess` (its error must leave the
/// board within `margin_m` of where the guess puts it).
pub fn calibrate_with_board(
    views: &[BoardView],
    guess: &Isometry3<f64>,
    margin_m: f64,
) -> Result<TargetResult, CalibError> {
    if views.len() < 3 {
        return Err(CalibError::Degenerate(format!(
            "target-based camera–LiDAR needs ≥ 3 board poses (differently tilted), got {}",
            views.len()
        )));
    }
    let mut t = *guess;
    let mut sel: Vec<(Vec<Vector3<f64>>, Plane)> = Vec::new();
    let mut margin = margin_m;
    for round in 0..5 {
        // Board points: inside the board rectangle (+ margin) and near its plane, in the board
        // frame as the current estimate sees them; the margin shrinks each round. The last
        // round only re-selects (with the solution's own margin) for the covariance.
        sel = views.iter().map(|v| (v.on_board(&t, margin), v.plane())).collect();
        if let Some(k) = sel.iter().position(|s| s.0.len() < 10) {
            return Err(CalibError::Degenerate(format!(
                "board view {k}: only {} LiDAR points on the board (need 10); is the guess within {margin:.2} m?",
                sel[k].0.len()
            )));
        }
        if round == 4 {
            break;
        }
        // Gauss–Newton on n·(T p) − d.
        for _ in 0..15 {
            let (jtj, jtr, _, _) = normal_equations(&sel, &t);
            let step = jtj.lu().solve(&(-jtr)).ok_or_else(|| {
                CalibError::Degenerate(
                    "board planes do not fix all six degrees of freedom (tilt the board more)".into(),
                )
            })?;
            t = hdmap_core::pose::exp_left(&step) * t;
            if step.norm() < 1e-12 {
                break;
            }
        }
        margin = (margin * 0.5).max(0.05);
    }
    // Covariance from the final normal equations, on the points the solution itself selects.
    let (jtj, _, ss, n_obs) = normal_equations(&sel, &t);
    let sigma2 = ss / (n_obs.saturating_sub(6).max(1)) as f64;
    let cov = jtj
        .try_inverse()
        .ok_or_else(|| CalibError::Degenerate("board planes do not fix all six degrees of freedom".into()))?
        * sigma2;
    let mut covariance = [[0.0; 6]; 6];
    for (a, row) in covariance.iter_mut().enumerate() {
        for (b, c) in row.iter_mut().enumerate() {
            *c = cov[(a, b)];
        }
    }
    Ok(TargetResult {
        camera_from_lidar: t,
        covariance,
        rms_m: (ss / n_obs.max(1) as f64).sqrt(),
        points_per_view: sel.iter().map(|s| s.0.len()).collect(),
    })
}
