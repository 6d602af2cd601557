//! Timestamped poses and trajectories.
//!
//! A pose is an `Isometry3<f64>` named `target_from_source`: it maps coordinates in the source
//! frame into the target frame (`world_from_vehicle * p_vehicle = p_world`).

use nalgebra::{Isometry3, Translation3, UnitQuaternion};
use serde::{Deserialize, Serialize};

use crate::{CoreError, FrameId, GeoOrigin};

/// A pose at a time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StampedPose {
    /// Time of validity, nanoseconds (time base given by the trajectory's source).
    pub stamp_ns: i64,
    /// The transform from the trajectory's source frame into its target frame.
    pub target_from_source: Isometry3<f64>,
}

/// A time-ordered sequence of `target_from_source` poses.
///
/// When `target` is [`FrameId::World`], translations are in the CRS of `origin` (absolute CRS
/// coordinates, not origin-relative, unless `origin_relative` says so).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trajectory {
    /// Frame the poses map into.
    pub target: FrameId,
    /// Frame the poses map from.
    pub source: FrameId,
    /// CRS + origin of world coordinates; `None` when the poses are in a local or unknown frame.
    pub origin: Option<GeoOrigin>,
    /// True when translations are relative to `origin` rather than absolute CRS coordinates.
    pub origin_relative: bool,
    /// Poses sorted by `stamp_ns`, strictly increasing.
    pub poses: Vec<StampedPose>,
}

impl Trajectory {
    /// A trajectory from poses; fails when empty, unsorted, or non-finite.
    pub fn new(target: FrameId, source: FrameId, poses: Vec<StampedPose>) -> Result<Self, CoreError> {
        if poses.is_empty() {
            return Err(CoreError::Trajectory("no poses".into()));
        }
        for (i, w) in poses.windows(2).enumerate() {
            if w[1].stamp_ns <= w[0].stamp_ns {
                return Err(CoreError::Trajectory(format!(
                    "stamps not strictly increasing at pose {} ({} ns after {} ns)",
                    i + 1,
                    w[1].stamp_ns,
                    w[0].stamp_ns
                )));
            }
        }
        if let Some(i) = poses.iter().position(|p| {
            !p.target_from_source.translation.vector.iter().all(|v| v.is_finite())
                || !p.target_from_source.rotation.coords.iter().all(|v| v.is_finite())
        }) {
            return Err(CoreError::NonFinite { index: i });
        }
        Ok(Self { target, source, origin: None, origin_relative: false, poses })
    }

    /// First and last stamp.
    pub fn span_ns(&self) -> (i64, i64) {
        (self.poses[0].stamp_ns, self.poses[self.poses.len() - 1].stamp_ns)
    }

    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        let (a, b) = self.span_ns();
        (b - a) as f64 * 1e-9
    }

    /// Path length in metres (sum of translation steps).
    pub fn length_m(&self) -> f64 {
        self.poses
            .windows(2)
            .map(|w| {
                (w[1].target_from_source.translation.vector - w[0].target_from_source.translation.vector)
                    .norm()
            })
            .sum()
    }

    /// Median pose rate in Hz (robust to outages); `None` with fewer than two poses.
    pub fn median_rate_hz(&self) -> Option<f64> {
        let mut dts: Vec<i64> = self.poses.windows(2).map(|w| w[1].stamp_ns - w[0].stamp_ns).collect();
        if dts.is_empty() {
            return None;
        }
        dts.sort_unstable();
        Some(1e9 / dts[dts.len() / 2] as f64)
    }

    /// Largest gap between consecutive poses, in seconds.
    pub fn max_gap_s(&self) -> f64 {
        self.poses.windows(2).map(|w| (w[1].stamp_ns - w[0].stamp_ns) as f64 * 1e-9).fold(0.0, f64::max)
    }

    /// The pose at `stamp_ns`: linear interpolation of translation and spherical-linear of
    /// rotation between the two neighbouring poses. Fails outside the span.
    pub fn interpolate(&self, stamp_ns: i64) -> Result<Isometry3<f64>, CoreError> {
        let (first_ns, last_ns) = self.span_ns();
        if stamp_ns < first_ns || stamp_ns > last_ns {
            return Err(CoreError::OutsideTrajectory { stamp_ns, first_ns, last_ns });
        }
        let i = self.poses.partition_point(|p| p.stamp_ns <= stamp_ns);
        if i == 0 {
            return Ok(self.poses[0].target_from_source);
        }
        if i >= self.poses.len() {
            return Ok(self.poses[self.poses.len() - 1].target_from_source);
        }
        let (a, b) = (&self.poses[i - 1], &self.poses[i]);
        let t = (stamp_ns - a.stamp_ns) as f64 / (b.stamp_ns - a.stamp_ns) as f64;
        Ok(interpolate_pose(&a.target_from_source, &b.target_from_source, t))
    }
}

/// Pose between `a` (t = 0) and `b` (t = 1): lerp on translation, slerp on rotation.
pub fn interpolate_pose(a: &Isometry3<f64>, b: &Isometry3<f64>, t: f64) -> Isometry3<f64> {
    let translation = a.translation.vector.lerp(&b.translation.vector, t);
    let rotation: UnitQuaternion<f64> = a.rotation.slerp(&b.rotation, t);
    Isometry3::from_parts(Translation3::from(translation), rotation)
}

/// The rigid motion of a small perturbation `δ` = (translation m, rotation vector rad), the
/// order of [`crate::Extrinsic::covariance`]: `x ↦ R(δ_r)·x + δ_t`, applied on the left.
pub fn exp_left(d: &nalgebra::Vector6<f64>) -> Isometry3<f64> {
    Isometry3::from_parts(
        Translation3::new(d[0], d[1], d[2]),
        UnitQuaternion::from_scaled_axis(nalgebra::Vector3::new(d[3], d[4], d[5])),
    )
}

/// The cross-product matrix `[v]×` (`[v]× w = v × w`).
pub fn skew(v: &nalgebra::Vector3<f64>) -> nalgebra::Matrix3<f64> {
    nalgebra::Matrix3::new(0.0, -v.z, v.y, v.z, 0.0, -v.x, -v.y, v.x, 0.0)
}

/// The SE(3) exponential of `δ` = (rotation vector rad, translation m) — rotation first, the
/// order of the scan matchers' normal equations: `exp([ω]×)` and `V(ω)·v`.
pub fn exp_se3(d: &nalgebra::Vector6<f64>) -> Isometry3<f64> {
    let w = nalgebra::Vector3::new(d[0], d[1], d[2]);
    let v = nalgebra::Vector3::new(d[3], d[4], d[5]);
    let rot = UnitQuaternion::from_scaled_axis(w);
    let th = w.norm();
    let wx = skew(&w);
    let vm = if th < 1e-9 {
        nalgebra::Matrix3::identity() + 0.5 * wx
    } else {
        nalgebra::Matrix3::identity()
            + (1.0 - th.cos()) / (th * th) * wx
            + (th - th.sin()) / (th * th * th) * wx * wx
    };
    Isometry3::from_parts(Translation3::from(vm * v), rot)
}

/// Adjoint of `t` for perturbations ordered (translation, rotation): a left perturbation `δ`
/// of `t`'s target frame equals `Ad(t)⁻¹ δ` on its source side, i.e.
/// `exp(Ad(t) δ) · t = t · exp(δ)`. Moves 6×6 covariances ([`crate::Extrinsic::covariance`])
/// between frames: `Σ' = Ad Σ Adᵀ`.
pub fn adjoint(t: &Isometry3<f64>) -> nalgebra::Matrix6<f64> {
    let r = t.rotation.to_rotation_matrix().into_inner();
    let p = t.translation.vector;
    let mut m = nalgebra::Matrix6::zeros();
    m.fixed_view_mut::<3, 3>(0, 0).copy_from(&r);
    m.fixed_view_mut::<3, 3>(0, 3).copy_from(&(p.cross_matrix() * r));
    m.fixed_view_mut::<3, 3>(3, 3).copy_from(&r);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    fn pose(x: f64, yaw: f64) -> Isometry3<f64> {
        Isometry3::new(Vector3::new(x, 0.0, 0.0), Vector3::new(0.0, 0.0, yaw))
    }

    #[test]
    fn interpolation_hits_midpoints_and_rejects_outside() -> Result<(), CoreError> {
        let traj = Trajectory::new(
            FrameId::World,
            FrameId::Vehicle,
            vec![
                StampedPose { stamp_ns: 0, target_from_source: pose(0.0, 0.0) },
                StampedPose { stamp_ns: 1_000_000_000, target_from_source: pose(10.0, 1.0) },
            ],
        )?;
        let mid = traj.interpolate(250_000_000)?;
        assert!((mid.translation.x - 2.5).abs() < 1e-12);
        assert!((mid.rotation.angle() - 0.25).abs() < 1e-12);
        assert!(traj.interpolate(-1).is_err());
        assert!(traj.interpolate(1_000_000_001).is_err());
        assert!((traj.length_m() - 10.0).abs() < 1e-12);
        assert_eq!(traj.median_rate_hz(), Some(1.0));
        Ok(())
    }

    #[test]
    fn unsorted_or_empty_trajectories_are_errors() {
        let p = StampedPose { stamp_ns: 5, target_from_source: Isometry3::identity() };
        assert!(Trajectory::new(FrameId::World, FrameId::Vehicle, vec![]).is_err());
        assert!(Trajectory::new(FrameId::World, FrameId::Vehicle, vec![p, p]).is_err());
    }

    #[test]
    fn adjoint_moves_a_perturbation_across_the_transform() {
        let t = Isometry3::from_parts(
            Translation3::new(1.0, -2.0, 0.5),
            UnitQuaternion::from_euler_angles(0.3, -0.2, 1.1),
        );
        let d = nalgebra::Vector6::new(0.01, -0.02, 0.03, 0.002, 0.001, -0.003);
        let exp = exp_left;
        // First order: the mismatch shrinks with the square of the perturbation.
        let small = d * 1e-3;
        let lhs = exp(&(adjoint(&t) * small)) * t;
        let rhs = t * exp(&small);
        assert!((lhs.to_homogeneous() - rhs.to_homogeneous()).abs().max() < 1e-9);
    }
}
