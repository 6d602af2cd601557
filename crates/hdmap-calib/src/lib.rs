//! # hdmap-calib — sensor calibration
//!
//! * [`corners`]: chessboard inner-corner detection with sub-pixel refinement (no OpenCV).
//! * [`intrinsics`]: Zhang initialisation + Levenberg–Marquardt refinement of pinhole /
//!   Brown–Conrady or fisheye intrinsics, outlier views, RMS and parameter std devs.
//! * [`camlidar`]: targetless camera–LiDAR refinement (LiDAR depth/intensity edges onto image
//!   edges) on ordinary street scenes.
//! * [`target`]: target-based camera–LiDAR (board pose by planar PnP, LiDAR board points onto
//!   the board planes), with covariance.
//! * [`handeye`]: `body_from_sensor` from sensor and body motions (LiDAR–INS), reporting the
//!   directions the motions leave unobservable.
//!
//! Every transform produced is named `target_from_source`.

pub mod camlidar;
pub mod corners;
pub mod handeye;
pub mod intrinsics;
pub mod paint_check;
pub mod target;

use std::path::{Path, PathBuf};

use thiserror::Error;

pub use intrinsics::{IntrinsicsResult, LensModel, View};

/// Errors of the calibration stage.
#[derive(Debug, Error)]
pub enum CalibError {
    /// Input could not be read.
    #[error(transparent)]
    Io(#[from] hdmap_io::IoError),
    /// The data cannot determine the parameters (too few views, degenerate geometry).
    #[error("calibration is degenerate: {0}")]
    Degenerate(String),
    /// No usable input was found.
    #[error("{}: {message}", path.display())]
    NoData {
        /// Where.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
}

/// Board images of a folder (PNG/JPEG), sorted by name.
pub fn board_images(dir: &Path) -> Result<Vec<PathBuf>, CalibError> {
    let rd =
        std::fs::read_dir(dir).map_err(|source| hdmap_io::IoError::Os { path: dir.to_path_buf(), source })?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg" | "bmp" | "tif" | "tiff")
            })
        })
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(CalibError::NoData {
            path: dir.to_path_buf(),
            message: "no board images (png/jpg/jpeg/bmp/tif)".into(),
        });
    }
    Ok(v)
}

/// Board coordinates (m, z = 0) of a `cols × rows` chessboard's inner corners in the order the
/// corner detector returns them (`corners[j * cols + i]` at (i·s, j·s)).
pub fn board_points(cols: usize, rows: usize, square_m: f64) -> Vec<[f64; 2]> {
    (0..rows).flat_map(|j| (0..cols).map(move |i| [i as f64 * square_m, j as f64 * square_m])).collect()
}

/// Per image: the file and the board found in it, if any.
pub type Detections = Vec<(PathBuf, Option<corners::Board>)>;

/// Detects a `cols × rows` board in every image (in parallel) and calibrates.
/// Returns the result and, per image, whether the board was found.
pub fn calibrate_images(
    images: &[PathBuf],
    cols: usize,
    rows: usize,
    square_m: f64,
    model: LensModel,
) -> Result<(IntrinsicsResult, Detections), CalibError> {
    use rayon::prelude::*;
    type Detection = (PathBuf, (u32, u32), Option<corners::Board>);
    let detections: Vec<Result<Detection, CalibError>> = images
        .par_iter()
        .map(|p| {
            let img = hdmap_io::image::read_image(p)?.to_luma8();
            Ok((p.clone(), img.dimensions(), corners::detect(&img, cols, rows)))
        })
        .collect();
    let detections = detections.into_iter().collect::<Result<Vec<_>, _>>()?;
    let (w, h) = detections.first().map(|d| d.1).unwrap_or((0, 0));
    if let Some(d) = detections.iter().find(|d| d.1 != (w, h)) {
        return Err(CalibError::NoData {
            path: d.0.clone(),
            message: format!("image size {:?} differs from {:?}", d.1, (w, h)),
        });
    }
    let object = board_points(cols, rows, square_m);
    let views: Vec<View> = detections
        .iter()
        .filter_map(|(p, _, b)| {
            b.as_ref().map(|b| View {
                name: p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
                object: object.clone(),
                image: b.corners.clone(),
            })
        })
        .collect();
    let result = intrinsics::calibrate(views, model, w, h)?;
    Ok((result, detections.into_iter().map(|(p, _, b)| (p, b)).collect()))
}
