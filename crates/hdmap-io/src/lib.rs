//! # hdmap-io — the real formats hdmap reads and writes
//!
//! * [`las`]: LAS/LAZ 1.2–1.4 (and COPC, read as LAZ), CRS from WKT and GeoTIFF VLRs.
//! * [`pcd`]: PCD v0.7 ascii / binary / binary_compressed (LZF), arbitrary fields.
//! * [`kitti`]: KITTI `.bin` scans (x y z reflectance as f32).
//! * [`raster`]: GeoTIFF (any GDAL raster) with windowed reads and CRS-aware writes.
//! * [`vector`]: vector layers through OGR (GeoPackage, GeoJSON, ESRI Shapefile).
//! * [`trajectory`]: CSV with header, TUM, KITTI poses, NovAtel-style INS CSV.
//! * [`image`]: camera images through the `image` crate.
//! * [`pjlab`]: OpenCalib (PJLab SensorsCalibration) intrinsic/extrinsic JSON and text files.
//! * [`info`]: a summary of any supported file, for `hdmap info`.
//!
//! Every reader checks its input (missing, empty, directory, truncated, lying header) and
//! fails with an [`IoError`] naming the file; every writer writes atomically (temp + rename).

pub mod camera_records;
pub mod crs;
pub mod error;
pub mod fsutil;
pub mod image;
pub mod info;
pub mod kapture;
pub mod kitti;
pub mod labels;
pub mod las;
pub mod layout;
pub mod ndt;
pub mod osm;
pub mod pcd;
pub mod pjlab;
pub mod raster;
pub mod rig;
pub mod scan;
pub mod testdata;
pub mod trajectory;
pub mod vector;

pub use error::IoError;

/// Sets GDAL up once per process: outputs without wall-clock timestamps, and diagnostics routed
/// to `tracing` (debug level) instead of stderr:
/// errors still reach the caller as [`IoError::Gdal`] with GDAL's message, but the terminal
/// shows one line per failure, not GDAL's running commentary.
pub(crate) fn init_gdal() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Reproducible GeoPackages: no wall-clock time in gpkg_contents.last_change.
        let _ = gdal::config::set_config_option("OGR_CURRENT_DATE", "2000-01-01T00:00:00.000Z");
        gdal::config::set_error_handler(|class, number, msg| {
            tracing::debug!(target: "gdal", "GDAL {class:?} {number}: {msg}");
        });
    });
}
