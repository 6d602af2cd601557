//! The sensor rig: extrinsic transforms between the vehicle's frames, with uncertainty and
//! clock offsets. Produced by calibration (or a vehicle spec sheet), consumed by every stage
//! that moves data between frames.

use nalgebra::Isometry3;
use serde::{Deserialize, Serialize};

use crate::{CoreError, FrameId};

/// One calibrated transform `target_from_source`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extrinsic {
    /// Frame the transform maps into (usually [`FrameId::Vehicle`]).
    pub target: FrameId,
    /// Frame the transform maps from (a sensor).
    pub source: FrameId,
    /// The transform.
    pub target_from_source: Isometry3<f64>,
    /// 6×6 covariance of (tx, ty, tz, rx, ry, rz) in m² and rad² (rotation as a small-angle
    /// perturbation applied on the left), when known.
    pub covariance: Option<[[f64; 6]; 6]>,
    /// Clock offset of the source sensor: `true_time = sensor_stamp - time_offset_ns`.
    pub time_offset_ns: i64,
}

/// A set of extrinsics; each (target, source) pair appears at most once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rig {
    /// The transforms.
    pub extrinsics: Vec<Extrinsic>,
}

impl Rig {
    /// Adds or replaces the transform for (target, source).
    pub fn set(&mut self, e: Extrinsic) {
        self.extrinsics.retain(|x| !(x.target == e.target && x.source == e.source));
        self.extrinsics.push(e);
    }

    /// The extrinsic stored for exactly (target, source).
    pub fn extrinsic(&self, target: FrameId, source: FrameId) -> Option<&Extrinsic> {
        self.extrinsics.iter().find(|e| e.target == target && e.source == source)
    }

    /// `target_from_source`, found directly, inverted, or composed through the vehicle frame.
    pub fn transform(&self, target: FrameId, source: FrameId) -> Result<Isometry3<f64>, CoreError> {
        if target == source {
            return Ok(Isometry3::identity());
        }
        let direct = |t: FrameId, s: FrameId| -> Option<Isometry3<f64>> {
            self.extrinsic(t, s)
                .map(|e| e.target_from_source)
                .or_else(|| self.extrinsic(s, t).map(|e| e.target_from_source.inverse()))
        };
        if let Some(t) = direct(target, source) {
            return Ok(t);
        }
        if let (Some(a), Some(b)) = (direct(target, FrameId::Vehicle), direct(FrameId::Vehicle, source)) {
            return Ok(a * b);
        }
        Err(CoreError::Parse {
            what: "rig transform (no path between frames)",
            text: format!("{target}_from_{source}"),
        })
    }

    /// Clock offset of a sensor (0 when the rig does not list one).
    pub fn time_offset_ns(&self, sensor: FrameId) -> i64 {
        self.extrinsics.iter().find(|e| e.source == sensor).map(|e| e.time_offset_ns).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    #[test]
    fn transforms_compose_and_invert_through_the_vehicle() -> Result<(), CoreError> {
        let v_l = Isometry3::new(Vector3::new(1.2, 0.0, 1.9), Vector3::new(0.01, -0.02, 0.03));
        let v_g =
            Isometry3::new(Vector3::new(0.0, 0.3, 1.5), Vector3::new(0.0, 0.0, std::f64::consts::FRAC_PI_2));
        let mut rig = Rig::default();
        for (s, t) in [(FrameId::Lidar(0), v_l), (FrameId::Gnss, v_g)] {
            rig.set(Extrinsic {
                target: FrameId::Vehicle,
                source: s,
                target_from_source: t,
                covariance: None,
                time_offset_ns: 0,
            });
        }
        let g_l = rig.transform(FrameId::Gnss, FrameId::Lidar(0))?;
        let p = nalgebra::Point3::new(3.0, -4.0, 0.5);
        let expect = v_g.inverse() * (v_l * p);
        assert!((g_l * p - expect).norm() < 1e-12);
        let l_v = rig.transform(FrameId::Lidar(0), FrameId::Vehicle)?;
        assert!((l_v * (v_l * p) - p).norm() < 1e-12);
        assert!(rig.transform(FrameId::Camera(0), FrameId::Lidar(0)).is_err());
        Ok(())
    }
}
