//! Intrinsics on real chessboard photos, side by side with OpenCV's calibrateCamera on the
//! same images: with OpenCV's own detection (findChessboardCorners + cornerSubPix 11) and with
//! our corners. Both sides apply the same outlier-view rule (drop views above
//! max(3 × median, 1 px) RMS, calibrate again).

use std::path::PathBuf;

use hdmap_calib::{LensModel, calibrate_images};
use hdmap_io::testdata::{run_python, shared_data};

fn compare(images: Vec<PathBuf>, cols: usize, rows: usize, square: f64) {
    let (ours, detections) =
        calibrate_images(&images, cols, rows, square, LensModel::Pinhole).expect("calibrate");
    let found = detections.iter().filter(|d| d.1.is_some()).count();
    let mut corners = serde_json::Map::new();
    for (p, b) in &detections {
        if let Some(b) = b {
            corners.insert(
                p.file_name().expect("name").to_string_lossy().to_string(),
                serde_json::json!(b.corners),
            );
        }
    }
    let tmp = tempfile_path(&format!("corners_{cols}x{rows}.json"));
    std::fs::write(&tmp, serde_json::Value::Object(corners).to_string()).expect("write corners");
    let mut args: Vec<std::ffi::OsString> =
        vec![cols.to_string().into(), rows.to_string().into(), square.to_string().into(), tmp.clone().into()];
    args.extend(images.iter().map(|p| p.clone().into_os_string()));
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let out: serde_json::Value =
        serde_json::from_str(&run_python("opencv_calibrate.py", &refs)).expect("json");
    let cv = &out["opencv_detection"];
    let same = &out["hdmap_corners"];
    let i = ours.intrinsics;
    eprintln!(
        "{} images: boards found {found} (OpenCV {}), RMS ours {:.4} px over {} views, OpenCV {:.4} px over {} views, OpenCV on our corners {:.4} px",
        images.len(),
        cv["views_used"].as_u64().unwrap_or(0) + cv["views_rejected"].as_u64().unwrap_or(0),
        ours.rms_px,
        ours.per_view_rms_px.len(),
        cv["rms_px"].as_f64().unwrap_or(f64::NAN),
        cv["views_used"],
        same["rms_px"].as_f64().unwrap_or(f64::NAN),
    );
    for (name, v) in [("fx", i.fx), ("fy", i.fy), ("cx", i.cx), ("cy", i.cy)] {
        let theirs = cv[name].as_f64().expect("number");
        let rel = (v - theirs).abs() / theirs;
        eprintln!(
            "  {name}: ours {v:.3}, OpenCV {theirs:.3} ({:.3} %), OpenCV on our corners {:.3}",
            100.0 * rel,
            same[name].as_f64().unwrap_or(f64::NAN)
        );
        assert!(rel < 0.005, "{name} differs from OpenCV's by {:.3} %", 100.0 * rel);
        // Same corners, same model: our optimiser reaches OpenCV's solution.
        let s = same[name].as_f64().expect("number");
        assert!((v - s).abs() / s < 1e-4, "{name}: ours {v} vs OpenCV on our corners {s}");
    }
    assert!(
        ours.rms_px <= cv["rms_px"].as_f64().expect("rms") + 1e-9,
        "RMS {} worse than OpenCV's {}",
        ours.rms_px,
        cv["rms_px"]
    );
    assert!(ours.rms_px <= same["rms_px"].as_f64().expect("rms") + 1e-6);
    assert_eq!(found, images.len(), "every board found");
}

fn tempfile_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hdmap-calib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

#[test]
fn opencv_sample_chessboards() {
    let Some(dir) = shared_data("opencv_calib_samples") else { return };
    let images: Vec<PathBuf> =
        (1..=14).filter(|i| *i != 10).map(|i| dir.join(format!("left{i:02}.jpg"))).collect();
    compare(images, 9, 6, 0.025);
}

#[test]
fn pjlab_checkerboards() {
    let Some(dir) = shared_data("pjlab_sensorscalib/camera_intrinsic_checkerboard") else { return };
    let images = hdmap_calib::board_images(&dir).expect("images");
    assert_eq!(images.len(), 12);
    compare(images, 17, 15, 0.025);
}
