//! OpenCalib / PJLab SensorsCalibration files: the JSON calibration records
//! (`<source>-to-<target>-extrinsic.json`, `<camera>-intrinsic.json`), the LiDAR–camera
//! `calib.txt` (`K:` / `D:` / `T:` lines) and the LiDAR–LiDAR `initial_extrinsic.txt`.
//!
//! Every transform returned is `target_from_source` as the files define it: the JSON
//! `sensor_calib` of `<source>-to-<target>` maps points of `source` into `target`, and
//! `calib.txt`'s `T` maps LiDAR points into the camera.

use std::path::{Path, PathBuf};

use hdmap_core::camera::{CameraIntrinsics, Distortion};
use hdmap_core::nalgebra::{Isometry3, Matrix3, Matrix4, Rotation3, Translation3, UnitQuaternion};

use crate::IoError;

const JSON: &str = "OpenCalib JSON";
const TXT: &str = "OpenCalib calib.txt";

fn read_text(path: &Path) -> Result<String, IoError> {
    crate::fsutil::check_input_file(path)?;
    std::fs::read_to_string(path).map_err(|source| IoError::Os { path: path.to_path_buf(), source })
}

fn bad(path: &Path, format: &'static str, detail: impl Into<String>) -> IoError {
    IoError::Format { path: path.to_path_buf(), format, detail: detail.into() }
}

fn read_json(path: &Path) -> Result<serde_json::Value, IoError> {
    serde_json::from_str(&read_text(path)?).map_err(|e| bad(path, JSON, e.to_string()))
}

/// The `param` object of the file's single top-level record.
fn param<'a>(path: &Path, j: &'a serde_json::Value) -> Result<&'a serde_json::Value, IoError> {
    let o = j.as_object().ok_or_else(|| bad(path, JSON, "top level is not an object"))?;
    if o.len() != 1 {
        return Err(bad(path, JSON, format!("expected one calibration record, found {}", o.len())));
    }
    o.values().next().and_then(|v| v.get("param")).ok_or_else(|| bad(path, JSON, "record has no \"param\""))
}

/// An OpenCV-style `{rows, cols, data: [[...]]}` matrix as row-major numbers.
fn matrix(
    path: &Path,
    m: Option<&serde_json::Value>,
    name: &str,
) -> Result<(usize, usize, Vec<f64>), IoError> {
    let m = m.ok_or_else(|| bad(path, JSON, format!("missing \"{name}\"")))?;
    let rows = m
        .get("data")
        .and_then(|d| d.as_array())
        .ok_or_else(|| bad(path, JSON, format!("\"{name}\" has no data array")))?;
    let mut out = Vec::new();
    let mut cols = None;
    for (r, row) in rows.iter().enumerate() {
        let row =
            row.as_array().ok_or_else(|| bad(path, JSON, format!("\"{name}\" row {r} is not an array")))?;
        if *cols.get_or_insert(row.len()) != row.len() {
            return Err(bad(path, JSON, format!("\"{name}\" rows differ in length")));
        }
        for (c, v) in row.iter().enumerate() {
            let x = v.as_f64().filter(|x| x.is_finite());
            out.push(
                x.ok_or_else(|| bad(path, JSON, format!("\"{name}\"[{r}][{c}] is not a finite number")))?,
            );
        }
    }
    Ok((rows.len(), cols.unwrap_or(0), out))
}

/// A rigid transform from a row-major 3×4 or 4×4 matrix. The rotation block is snapped to the
/// nearest rotation: hand-edited calibration files are orthonormal only to a few 1e-2 (the
/// PJLab manual LiDAR–LiDAR one deviates by 2.2e-2), so up to 0.05 is accepted, beyond that
/// (a scale, a shear, a reflection) the file is refused.
fn rigid(path: &Path, format: &'static str, v: &[f64]) -> Result<Isometry3<f64>, IoError> {
    if v.len() != 12 && v.len() != 16 {
        return Err(bad(path, format, format!("transform has {} numbers, expected 12 or 16", v.len())));
    }
    if v.len() == 16 && (v[12].abs() + v[13].abs() + v[14].abs() > 1e-9 || (v[15] - 1.0).abs() > 1e-9) {
        return Err(bad(
            path,
            format,
            format!("last row is {:?}, not [0 0 0 1]: not a rigid transform", &v[12..]),
        ));
    }
    let m = Matrix4::from_fn(|r, c| {
        if r < 3 {
            v[r * 4 + c]
        } else if c == 3 {
            1.0
        } else {
            0.0
        }
    });
    let r: Matrix3<f64> = m.fixed_view::<3, 3>(0, 0).into_owned();
    let err = (r.transpose() * r - Matrix3::identity()).abs().max();
    if err > 0.05 || r.determinant() < 0.0 {
        return Err(bad(path, format, format!("rotation block is not a rotation (|RᵀR − I| = {err:.2e})")));
    }
    let rot = Rotation3::from_matrix(&r);
    Ok(Isometry3::from_parts(
        Translation3::new(m[(0, 3)], m[(1, 3)], m[(2, 3)]),
        UnitQuaternion::from_rotation_matrix(&rot),
    ))
}

/// `<source>-to-<target>-extrinsic.json`: `target_from_source`.
pub fn read_extrinsic_json(path: &Path) -> Result<Isometry3<f64>, IoError> {
    let j = read_json(path)?;
    let (_, _, v) = matrix(path, param(path, &j)?.get("sensor_calib"), "sensor_calib")?;
    rigid(path, JSON, &v)
}

/// Brown–Conrady from OpenCV's order `k1 k2 p1 p2 [k3]`.
fn brown_conrady(path: &Path, format: &'static str, d: &[f64]) -> Result<Distortion, IoError> {
    match d.len() {
        0 => Ok(Distortion::None),
        4 | 5 => Ok(Distortion::BrownConrady {
            k1: d[0],
            k2: d[1],
            p1: d[2],
            p2: d[3],
            k3: d.get(4).copied().unwrap_or(0.0),
        }),
        n => {
            Err(bad(path, format, format!("{n} distortion coefficients, expected 4 or 5 (k1 k2 p1 p2 [k3])")))
        }
    }
}

fn pinhole(
    path: &Path,
    format: &'static str,
    k: &[f64],
    dist: Distortion,
    size: (u32, u32),
) -> Result<CameraIntrinsics, IoError> {
    if k.len() != 9 || k[1] != 0.0 || k[3] != 0.0 || k[6] != 0.0 || k[7] != 0.0 || k[8] != 1.0 {
        return Err(bad(
            path,
            format,
            format!("K is not a 3×3 pinhole matrix [fx 0 cx; 0 fy cy; 0 0 1]: {k:?}"),
        ));
    }
    if k[0] <= 0.0 || k[4] <= 0.0 {
        return Err(bad(path, format, "focal lengths must be positive"));
    }
    Ok(CameraIntrinsics {
        width: size.0,
        height: size.1,
        fx: k[0],
        fy: k[4],
        cx: k[2],
        cy: k[5],
        distortion: dist,
    })
}

/// `<camera>-intrinsic.json`: `cam_K`, `cam_dist` (k1 k2 p1 p2 [k3]), `img_dist_w/h`.
pub fn read_camera_intrinsic_json(path: &Path) -> Result<CameraIntrinsics, IoError> {
    let j = read_json(path)?;
    let p = param(path, &j)?;
    let (_, _, k) = matrix(path, p.get("cam_K"), "cam_K")?;
    let (_, _, d) = matrix(path, p.get("cam_dist"), "cam_dist")?;
    let size = |n: &str| {
        p.get(n)
            .and_then(|v| v.as_u64())
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| bad(path, JSON, format!("missing \"{n}\"")))
    };
    pinhole(path, JSON, &k, brown_conrady(path, JSON, &d)?, (size("img_dist_w")?, size("img_dist_h")?))
}

/// `calib.txt` of the LiDAR–camera samples: `K:` (9), `D:` (k1 k2 p1 p2 [k3]), `T:` (12, the
/// camera_from_lidar 3×4). The file carries no image size: pass the image's.
pub fn read_calib_txt(
    path: &Path,
    image_size: (u32, u32),
) -> Result<(CameraIntrinsics, Isometry3<f64>), IoError> {
    let text = read_text(path)?;
    let mut k = None;
    let mut d = None;
    let mut t = None;
    for (i, line) in text.lines().enumerate() {
        let Some((key, rest)) = line.split_once(':') else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(bad(path, TXT, format!("line {}: expected `KEY: numbers`", i + 1)));
        };
        let nums: Vec<f64> = rest
            .split_whitespace()
            .map(|s| s.parse::<f64>().ok().filter(|x| x.is_finite()))
            .collect::<Option<_>>()
            .ok_or_else(|| bad(path, TXT, format!("line {}: not a list of finite numbers", i + 1)))?;
        match key.trim() {
            "K" => k = Some(nums),
            "D" => d = Some(nums),
            "T" => t = Some(nums),
            other => {
                return Err(bad(
                    path,
                    TXT,
                    format!("line {}: unknown key {other:?} (expected K, D, T)", i + 1),
                ));
            }
        }
    }
    let missing = |n: &str| bad(path, TXT, format!("no `{n}:` line"));
    let (k, d, t) =
        (k.ok_or_else(|| missing("K"))?, d.ok_or_else(|| missing("D"))?, t.ok_or_else(|| missing("T"))?);
    let cam = pinhole(path, TXT, &k, brown_conrady(path, TXT, &d)?, image_size)?;
    if t.len() != 12 {
        return Err(bad(path, TXT, format!("T has {} numbers, expected 12 (3×4 row-major)", t.len())));
    }
    Ok((cam, rigid(path, TXT, &t)?))
}

/// `initial_extrinsic.txt` of the LiDAR–LiDAR samples: one pose per device, lines
/// `(Roll,Pitch,Yaw,tx,ty,tz): r p y x y z` in degrees and metres, each the device's pose in the
/// reference LiDAR's frame (`reference_from_device`, rotation = Rz(yaw)·Ry(pitch)·Rx(roll)).
pub fn read_initial_extrinsics(path: &Path) -> Result<Vec<Isometry3<f64>>, IoError> {
    const F: &str = "OpenCalib initial_extrinsic.txt";
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| l.starts_with("(Roll")) {
        let v: Vec<f64> = line
            .split_once(':')
            .and_then(|(_, r)| {
                r.split_whitespace()
                    .map(|s| s.parse::<f64>().ok().filter(|x| x.is_finite()))
                    .collect::<Option<Vec<_>>>()
            })
            .filter(|v| v.len() == 6)
            .ok_or_else(|| bad(path, F, format!("line {}: expected six finite numbers after ':'", i + 1)))?;
        let r = UnitQuaternion::from_euler_angles(v[0].to_radians(), v[1].to_radians(), v[2].to_radians());
        out.push(Isometry3::from_parts(Translation3::new(v[3], v[4], v[5]), r));
    }
    if out.is_empty() {
        return Err(bad(path, F, "no `(Roll,Pitch,Yaw,tx,ty,tz):` line"));
    }
    Ok(out)
}

/// One camera image with the LiDAR scan taken with it and the dataset's reference extrinsic.
#[derive(Debug, Clone)]
pub struct LidarCameraSample {
    /// `manual_0`, `auto_1`, ...
    pub name: String,
    /// The image.
    pub image: PathBuf,
    /// The scan (PCD).
    pub scan: PathBuf,
    /// The camera, sized to the image.
    pub camera: CameraIntrinsics,
    /// The reference `camera_from_lidar`.
    pub camera_from_lidar: Isometry3<f64>,
    /// Anything the reader had to reconcile (e.g. an intrinsic file's image size differing
    /// from the image's).
    pub notes: Vec<String>,
}

fn image_size(path: &Path) -> Result<(u32, u32), IoError> {
    let img = crate::image::read_image(path)?;
    Ok((img.width(), img.height()))
}

/// The LiDAR–camera samples of an OpenCalib `SensorsCalibration` tree: `lidar2camera_manual/`
/// (`0.png`, `0.pcd`, intrinsic and extrinsic JSON) and `lidar2camera_auto_v2/ours/<n>/`
/// (`calib.jpg|png`, `calib.pcd`, `calib.txt`), whichever exist, in that order.
pub fn lidar_camera_samples(root: &Path) -> Result<Vec<LidarCameraSample>, IoError> {
    let mut out = Vec::new();
    let manual = root.join("lidar2camera_manual");
    if manual.is_dir() {
        let image = manual.join("0.png");
        let json = manual.join("center_camera-intrinsic.json");
        let mut camera = read_camera_intrinsic_json(&json)?;
        let (w, h) = image_size(&image)?;
        let mut notes = Vec::new();
        if (camera.width, camera.height) != (w, h) {
            notes.push(format!(
                "{} gives {}×{} px but {} is {w}×{h}: K is used as given on the image's pixels",
                json.display(),
                camera.width,
                camera.height,
                image.display()
            ));
            (camera.width, camera.height) = (w, h);
        }
        out.push(LidarCameraSample {
            name: "manual_0".into(),
            image,
            scan: manual.join("0.pcd"),
            camera,
            camera_from_lidar: read_extrinsic_json(
                &manual.join("top_center_lidar-to-center_camera-extrinsic.json"),
            )?,
            notes,
        });
    }
    let auto = root.join("lidar2camera_auto_v2/ours");
    if auto.is_dir() {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&auto)
            .map_err(|source| IoError::Os { path: auto.clone(), source })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("calib.txt").is_file())
            .collect();
        dirs.sort();
        for dir in dirs {
            let image =
                ["calib.jpg", "calib.png"].iter().map(|n| dir.join(n)).find(|p| p.is_file()).ok_or_else(
                    || IoError::Format {
                        path: dir.clone(),
                        format: TXT,
                        detail: "no calib.jpg or calib.png beside calib.txt".into(),
                    },
                )?;
            let (camera, camera_from_lidar) = read_calib_txt(&dir.join("calib.txt"), image_size(&image)?)?;
            let name = format!("auto_{}", dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default());
            out.push(LidarCameraSample {
                name,
                image,
                scan: dir.join("calib.pcd"),
                camera,
                camera_from_lidar,
                notes: vec![],
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    #[test]
    fn calib_txt_round_values_and_errors() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = write(
            dir.path(),
            "calib.txt",
            "K: 100 0 50 0 110 40 0 0 1\nD: 0.1 -0.2 0.001 0.002\nT: 0 -1 0 0.5 0 0 -1 0.25 1 0 0 -0.1\n",
        );
        let (cam, t) = read_calib_txt(&p, (100, 80)).expect("read");
        assert_eq!((cam.fx, cam.fy, cam.cx, cam.cy, cam.width), (100.0, 110.0, 50.0, 40.0, 100));
        assert_eq!(
            cam.distortion,
            Distortion::BrownConrady { k1: 0.1, k2: -0.2, p1: 0.001, p2: 0.002, k3: 0.0 }
        );
        // LiDAR forward (x) is the camera's optical axis (z).
        let fwd = t * hdmap_core::nalgebra::Point3::new(1.0, 0.0, 0.0);
        assert!((fwd - hdmap_core::nalgebra::Point3::new(0.5, 0.25, 0.9)).norm() < 1e-12);
        let p = write(
            dir.path(),
            "bad.txt",
            "K: 100 0 50 0 110 40 0 0 1\nD: 0 0 0 0\nT: 1 0 0 0 0 2 0 0 0 0 1 0\n",
        );
        let e = read_calib_txt(&p, (100, 80)).expect_err("scaled rotation");
        assert!(e.to_string().contains("bad.txt") && e.to_string().contains("not a rotation"), "{e}");
        let p = write(
            dir.path(),
            "nan.txt",
            "K: 100 0 50 0 110 40 0 0 1\nD: nan 0 0 0\nT: 1 0 0 0 0 1 0 0 0 0 1 0\n",
        );
        assert!(read_calib_txt(&p, (100, 80)).is_err());
    }

    #[test]
    fn extrinsic_json_needs_one_record_with_a_rotation() {
        let dir = tempfile::tempdir().expect("tmp");
        let good = r#"{"a-to-b-extrinsic": {"param": {"sensor_calib": {"data": [[1,0,0,1],[0,1,0,2],[0,0,1,3],[0,0,0,1]]}}}}"#;
        let t = read_extrinsic_json(&write(dir.path(), "g.json", good)).expect("read");
        assert_eq!(t.translation.vector.as_slice(), &[1.0, 2.0, 3.0]);
        let e = read_extrinsic_json(&write(dir.path(), "e.json", "{}")).expect_err("empty");
        assert!(e.to_string().contains("e.json"), "{e}");
    }
}
