//! Rig files (`rig.toml`): the sensor extrinsics, every transform `target_from_source`.
//!
//! ```toml
//! # hdmap rig
//! [[extrinsic]]
//! target = "vehicle"
//! source = "lidar0"
//! translation_m = [1.2, 0.0, 1.9]
//! rotation_wxyz = [1.0, 0.0, 0.0, 0.0]   # or rpy_deg = [roll, pitch, yaw], R = Rz·Ry·Rx
//! time_offset_ns = 0                     # optional
//! covariance = [[...6 rows of 6...]]     # optional: tx ty tz rx ry rz, m² / rad²
//! ```
//!
//! When both `rotation_wxyz` and `rpy_deg` are given they must agree (within 1e-6 rad).

use std::path::Path;

use hdmap_core::nalgebra::{Isometry3, Quaternion, Translation3, UnitQuaternion};
use hdmap_core::{Extrinsic, FrameId, Rig};
use serde::{Deserialize, Serialize};

use crate::IoError;
use crate::fsutil::{check_input_file, write_bytes_atomic};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RigFile {
    extrinsic: Vec<ExtrinsicEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtrinsicEntry {
    target: FrameId,
    source: FrameId,
    translation_m: [f64; 3],
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation_wxyz: Option<[f64; 4]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rpy_deg: Option<[f64; 3]>,
    #[serde(default)]
    time_offset_ns: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    covariance: Option<[[f64; 6]; 6]>,
}

fn fmt_err(path: &Path, detail: impl Into<String>) -> IoError {
    IoError::Format { path: path.to_path_buf(), format: "rig TOML", detail: detail.into() }
}

/// The rig file of a drive folder: `explicit` when given, else the folder's `rig.toml` (a
/// calibrated rig), else its `rig_nominal.toml` (the spec sheet).
pub fn drive_rig_path(drive_dir: &Path, explicit: Option<&Path>) -> Result<std::path::PathBuf, IoError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    ["rig.toml", "rig_nominal.toml"].iter().map(|n| drive_dir.join(n)).find(|p| p.exists()).ok_or_else(|| {
        IoError::Format {
            path: drive_dir.to_path_buf(),
            format: "drive folder",
            detail: "no rig.toml or rig_nominal.toml".into(),
        }
    })
}

/// Reads a rig file.
pub fn read_rig(path: &Path) -> Result<Rig, IoError> {
    check_input_file(path)?;
    let text =
        std::fs::read_to_string(path).map_err(|source| IoError::Os { path: path.to_path_buf(), source })?;
    let file: RigFile = toml::from_str(&text).map_err(|e| fmt_err(path, crate::error::one_line(&e)))?;
    let mut rig = Rig::default();
    for (i, e) in file.extrinsic.into_iter().enumerate() {
        let what = format!("extrinsic {} ({}_from_{})", i + 1, e.target, e.source);
        let from_rpy = e.rpy_deg.map(|r| {
            UnitQuaternion::from_euler_angles(r[0].to_radians(), r[1].to_radians(), r[2].to_radians())
        });
        let from_quat = match e.rotation_wxyz {
            Some(q) => {
                let q = Quaternion::new(q[0], q[1], q[2], q[3]);
                if (q.norm() - 1.0).abs() > 1e-6 {
                    return Err(fmt_err(path, format!("{what}: quaternion norm {} is not 1", q.norm())));
                }
                Some(UnitQuaternion::from_quaternion(q))
            }
            None => None,
        };
        let rotation = match (from_quat, from_rpy) {
            (Some(q), Some(r)) => {
                if q.angle_to(&r) > 1e-6 {
                    return Err(fmt_err(
                        path,
                        format!(
                            "{what}: rotation_wxyz and rpy_deg disagree by {:.6}°",
                            q.angle_to(&r).to_degrees()
                        ),
                    ));
                }
                q
            }
            (Some(q), None) | (None, Some(q)) => q,
            (None, None) => return Err(fmt_err(path, format!("{what}: needs rotation_wxyz or rpy_deg"))),
        };
        if !e.translation_m.iter().all(|v| v.is_finite()) {
            return Err(fmt_err(path, format!("{what}: non-finite translation")));
        }
        let t = e.translation_m;
        rig.set(Extrinsic {
            target: e.target,
            source: e.source,
            target_from_source: Isometry3::from_parts(Translation3::new(t[0], t[1], t[2]), rotation),
            covariance: e.covariance,
            time_offset_ns: e.time_offset_ns,
        });
    }
    Ok(rig)
}

/// Writes a rig file, atomically (quaternion and roll/pitch/yaw both written).
pub fn write_rig(path: &Path, rig: &Rig, comment: &str) -> Result<(), IoError> {
    let file = RigFile {
        extrinsic: rig
            .extrinsics
            .iter()
            .map(|e| {
                let q = e.target_from_source.rotation;
                let (r, p, y) = q.euler_angles();
                let t = e.target_from_source.translation.vector;
                ExtrinsicEntry {
                    target: e.target,
                    source: e.source,
                    translation_m: [t.x, t.y, t.z],
                    rotation_wxyz: Some([q.w, q.i, q.j, q.k]),
                    rpy_deg: Some([r.to_degrees(), p.to_degrees(), y.to_degrees()]),
                    time_offset_ns: e.time_offset_ns,
                    covariance: e.covariance,
                }
            })
            .collect(),
    };
    let body = toml::to_string(&file).map_err(|e| fmt_err(path, e.to_string()))?;
    let mut text = String::from("# hdmap rig: every transform is target_from_source\n");
    for line in comment.lines() {
        text.push_str(&format!("# {line}\n"));
    }
    text.push_str(&body);
    write_bytes_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdmap_core::nalgebra::Vector3;

    #[test]
    fn rig_round_trips_and_rejects_inconsistent_rotations() -> Result<(), IoError> {
        let dir = tempfile::tempdir().map_err(|source| IoError::Os { path: "tmp".into(), source })?;
        let path = dir.path().join("rig.toml");
        let mut rig = Rig::default();
        rig.set(Extrinsic {
            target: FrameId::Vehicle,
            source: FrameId::Lidar(0),
            target_from_source: Isometry3::new(
                Vector3::new(1.2, -0.01, 1.9),
                Vector3::new(0.006, -0.004, 0.01),
            ),
            covariance: Some([[1e-4; 6]; 6]),
            time_offset_ns: 2_500_000,
        });
        write_rig(&path, &rig, "test")?;
        let back = read_rig(&path)?;
        let (a, b) = (&rig.extrinsics[0], &back.extrinsics[0]);
        assert!(
            (a.target_from_source.translation.vector - b.target_from_source.translation.vector).norm()
                < 1e-12
        );
        assert!(a.target_from_source.rotation.angle_to(&b.target_from_source.rotation) < 1e-9);
        assert_eq!((a.time_offset_ns, a.covariance), (b.time_offset_ns, b.covariance));
        std::fs::write(&path, "[[extrinsic]]\ntarget = \"vehicle\"\nsource = \"lidar0\"\ntranslation_m = [0,0,0]\nrotation_wxyz = [1,0,0,0]\nrpy_deg = [0,0,10]\n")
            .map_err(|source| IoError::Os { path: path.clone(), source })?;
        assert!(read_rig(&path).is_err());
        std::fs::write(&path, "[[extrinsic]]\ntarget = \"vehicle\"\nsource = \"lidar0\"\ntranslation_m = [0,0,0]\nrpy_deg = [0,0,0]\nlever_arm = 1\n")
            .map_err(|source| IoError::Os { path: path.clone(), source })?;
        let err = read_rig(&path).expect_err("unknown key");
        assert!(err.to_string().contains("lever_arm"), "{err}");
        Ok(())
    }
}
