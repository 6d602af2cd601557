//! Dataset packaging: `hdmap publish JOB --out DIR` and `hdmap verify DIR`.
//!
//! A published map is a folder a researcher can download and check:
//!
//! * `road_layout/`, `pointcloud/`, `autoware_map/`, `ndt_map/`: the export stage's layers, byte
//!   for byte;
//! * `previews/`: the report's PNG figures;
//! * `metadata.json` ([`Metadata`]): CRS, vertical datum, map origin, coverage polygon (map CRS
//!   and WGS84), per-layer files and the accuracy figures the run measured, the licence;
//! * `LICENSE`: the licence text the publisher gives;
//! * `manifest.json` ([`PublishManifest`]): SHA-256 and size of every other file.
//!
//! The folder is assembled in `<out>.partial` and renamed into place. [`verify`] checks every
//! file against the manifest (missing, changed, unlisted), and the metadata's required keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use geo::{ConvexHull, MultiPoint, Point};
use hdmap_io::IoError;
use serde::{Deserialize, Serialize};

use crate::report::{self, ReportMetrics};
use crate::{PipelineError, Stage, files_under, fresh_dir, os, sha256_file};

/// `manifest.json` of a published map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishManifest {
    /// hdmap version that packaged it.
    pub hdmap_version: String,
    /// Every file but the manifest: relative path → checksum and size.
    pub files: BTreeMap<String, FileEntry>,
}

/// One file of a published map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// SHA-256, hex.
    pub sha256: String,
    /// Size, bytes.
    pub bytes: u64,
}

/// `metadata.json` of a published map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Name of the map (the job folder's name unless given).
    pub name: String,
    /// hdmap version that built it.
    pub hdmap_version: String,
    /// EPSG code of the map's projected CRS (the GeoPackage, the LAZ tiles).
    pub epsg: u32,
    /// Datum of every height (except the NGII shapefiles, which are ellipsoidal).
    pub vertical_datum: String,
    /// Map origin in the CRS: easting, northing, height.
    pub origin: [f64; 3],
    /// Convex hull of the road layout, map CRS `[x, y]`, closed.
    pub coverage: Vec<[f64; 2]>,
    /// The same polygon in WGS84 `[lon, lat]` (GeoJSON order).
    pub coverage_wgs84: Vec<[f64; 2]>,
    /// Area of the coverage polygon, km².
    pub coverage_km2: f64,
    /// Layers: name → description.
    pub layers: BTreeMap<String, LayerMetadata>,
    /// SPDX id (or name) of the licence in `LICENSE`.
    pub licence: String,
    /// SHA-256 of the job's effective config (`config.toml`).
    pub config_sha256: String,
}

/// One layer of a published map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerMetadata {
    /// Whether the map carries it.
    pub present: bool,
    /// Its folder in the published map.
    pub folder: String,
    /// Folder, formats and counts, in words.
    pub content: String,
    /// Accuracy figures the run measured (names carry their units).
    pub accuracy: BTreeMap<String, f64>,
    /// Why the layer is absent, or what limits it.
    pub note: String,
}

/// What `hdmap publish` needs besides the job.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The licence text to ship as `LICENSE`.
    pub licence_file: PathBuf,
    /// Its SPDX id (e.g. `CC-BY-4.0`).
    pub licence_id: String,
    /// The map's name (default: the job folder's name).
    pub name: Option<String>,
}

fn copy_tree(from: &Path, to: &Path) -> Result<usize, IoError> {
    let files = files_under(from)?;
    for rel in &files {
        let dst = to.join(rel);
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent).map_err(os(parent))?;
        }
        std::fs::copy(from.join(rel), &dst).map_err(os(&dst))?;
    }
    Ok(files.len())
}

/// `<key>` of register's report.json, a spread, as `<name>_<quantile>_<unit>` entries.
fn spread_entries(v: &serde_json::Value, key: &str, unit: &str, out: &mut BTreeMap<String, f64>) {
    let base = key.strip_suffix(&format!("_{unit}")).unwrap_or(key);
    for q in ["median", "p95", "max"] {
        if let Some(x) = v[key][q].as_f64() {
            out.insert(format!("{base}_{q}_{unit}"), x);
        }
    }
}

/// Packages the exported layers of `job` into `out` (which must not exist).
pub fn publish(job: &Path, out: &Path, opts: &PublishOptions) -> Result<Metadata, PipelineError> {
    let err = |m: String| PipelineError::Stage { stage: "publish", message: m };
    let export = job.join(Stage::Export.name());
    if !export.join("manifest.json").exists() {
        return Err(err(format!("{}: no finished export stage (run `hdmap run` first)", export.display())));
    }
    if out.exists() {
        return Err(err(format!("{}: already exists; publish into a new folder", out.display())));
    }
    let licence = std::fs::read_to_string(&opts.licence_file).map_err(os(&opts.licence_file))?;
    if licence.trim().is_empty() {
        return Err(err(format!("{}: the licence text is empty", opts.licence_file.display())));
    }
    let layout = hdmap_io::layout::read_layout_gpkg(&job.join(Stage::Layout.name()).join("layout.gpkg"))?;
    let name = opts.name.clone().unwrap_or_else(|| {
        job.canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_string()))
            .unwrap_or_default()
    });
    let partial = out.with_file_name(format!(
        ".{}.partial",
        out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()
    ));
    fresh_dir(&partial)?;

    // Layers, byte for byte.
    let mut counts = BTreeMap::new();
    for layer in ["road_layout", "pointcloud", "autoware_map", crate::NDT_DIR, crate::VISUAL_DIR] {
        let from = export.join(layer);
        let n = if from.is_dir() { copy_tree(&from, &partial.join(layer))? } else { 0 };
        counts.insert(layer, n);
    }
    // Previews from the report.
    let report_dir = job.join(report::REPORT_DIR);
    for f in [
        report::figures::LAYOUT,
        report::figures::CLOUD,
        report::figures::CLOUD_AFTER,
        report::figures::REMOVED,
        report::figures::RESIDUALS,
    ] {
        let src = report_dir.join(f);
        if src.exists() {
            let dst = partial.join("previews").join(f);
            std::fs::create_dir_all(partial.join("previews")).map_err(os(&partial))?;
            std::fs::copy(&src, &dst).map_err(os(&dst))?;
        }
    }
    hdmap_io::fsutil::write_bytes_atomic(&partial.join("LICENSE"), licence.as_bytes())?;

    // Coverage: convex hull of every layout vertex.
    let pts: Vec<Point<f64>> =
        layout.geometries().iter().flat_map(|(_, _, p)| p.iter().map(|q| Point::new(q.x, q.y))).collect();
    if pts.len() < 3 {
        return Err(err("the road layout has fewer than 3 vertices: no coverage polygon".into()));
    }
    let hull = MultiPoint::from(pts).convex_hull();
    let coverage: Vec<[f64; 2]> = hull.exterior().points().map(|p| [p.x(), p.y()]).collect();
    let mut coverage_wgs84 = coverage.clone();
    hdmap_io::crs::transform_points(layout.origin.epsg, 4326, &mut coverage_wgs84)?;
    let coverage_km2 = {
        use geo::Area;
        hull.unsigned_area() / 1e6
    };

    let metrics: Option<ReportMetrics> = std::fs::read_to_string(report_dir.join(report::METRICS))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let reg: serde_json::Value =
        std::fs::read_to_string(job.join(Stage::Register.name()).join(hdmap_register::output::files::REPORT))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();

    let mut layers = BTreeMap::new();
    let mut layout_acc = BTreeMap::new();
    let mut cloud_acc = BTreeMap::new();
    if let Some(m) = &metrics {
        if let Some(g) = m.ortho_gsd_m {
            layout_acc.insert("ortho_gsd_m".to_string(), g);
        }
        if let Some(p) = &m.paint {
            for (k, v) in
                [("lidar_paint_to_layout_median_cm", p.median_cm), ("lidar_paint_to_layout_p95_cm", p.p95_cm)]
            {
                layout_acc.insert(k.to_string(), v);
                cloud_acc.insert(k.to_string(), v);
            }
            if p.paint_points > 0 {
                cloud_acc
                    .insert("lidar_paint_matched_share".into(), p.matched as f64 / p.paint_points as f64);
            }
        }
    }
    spread_entries(&reg, "sigma_xy_cm", "cm", &mut cloud_acc);
    spread_entries(&reg, "sigma_yaw_deg", "deg", &mut cloud_acc);
    spread_entries(&reg, "correction_xy_cm", "cm", &mut cloud_acc);
    let ngii = partial.join("road_layout/ngii").is_dir();
    layers.insert(
        "road_layout".to_string(),
        LayerMetadata {
            present: counts["road_layout"] > 0,
            folder: "road_layout".into(),
            content: format!(
                "road_layout/: lanelet2_map.osm (Lanelet2, WGS84 + local_x/local_y), layout.gpkg and layout.geojson \
                 (EPSG:{}){}; {} lanes, {} lane boundaries, {} stop lines, {} crosswalks, {} surface marks",
                layout.origin.epsg,
                if ngii { ", ngii/*.shp (NGII / NAVER LABS schema, ellipsoidal heights)" } else { "" },
                layout.lanes.len(),
                layout.lane_boundaries.len(),
                layout.stop_lines.len(),
                layout.crosswalks.len(),
                layout.surface_marks.len()
            ),
            accuracy: layout_acc,
            note: "extracted from the orthophoto; agreement with the LiDAR's paint is the run's own check, not \
                   ground truth"
                .into(),
        },
    );
    layers.insert(
        "point_cloud".to_string(),
        LayerMetadata {
            present: counts["pointcloud"] > 0,
            folder: "pointcloud".into(),
            content: format!(
                "pointcloud/: {} LAZ tiles (LAS 1.4, CRS in a WKT VLR); autoware_map/: PCD tiles + \
                 pointcloud_map_metadata.yaml, lanelet2_map.osm, map_projector_info.yaml; {} points",
                counts["pointcloud"],
                metrics.as_ref().map_or(0, |m| m.cloud_points)
            ),
            accuracy: cloud_acc,
            note:
                "registered keyframe scans with moving objects removed by the free-space check (objects that \
                   never moved while in view, e.g. parked cars or a car driving along with the vehicle, stay)"
                    .into(),
        },
    );
    layers.insert(
        "lidar_features".to_string(),
        LayerMetadata {
            present: counts[crate::NDT_DIR] > 0,
            folder: crate::NDT_DIR.into(),
            content: format!(
                "{}/: voxel normal distributions (NDT) of the static cloud in the layout's map frame, \
                 tiled PCD (x y z = mean, cov = 6 covariance terms, count) + metadata.json; {} files",
                crate::NDT_DIR,
                counts[crate::NDT_DIR]
            ),
            accuracy: BTreeMap::new(),
            note:
                "for scan-to-map localization (hdmap localize; docs/formats/ndt_map.md); as accurate as the \
                   point-cloud layer it summarises"
                    .into(),
        },
    );
    layers.insert(
        "visual_features".to_string(),
        LayerMetadata {
            present: counts[crate::VISUAL_DIR] > 0,
            folder: crate::VISUAL_DIR.into(),
            content: if counts[crate::VISUAL_DIR] > 0 {
                format!(
                    "{}/: kapture 1.1 — camera, trajectories, records, FAST keypoints and BRIEF-256 descriptors \
                     of the observed features, points3d.txt, observations.txt — + hdmap_visual.json (CRS, \
                     origin, feature types); {} files",
                    crate::VISUAL_DIR,
                    counts[crate::VISUAL_DIR]
                )
            } else {
                String::new()
            },
            accuracy: BTreeMap::new(),
            note: if counts[crate::VISUAL_DIR] > 0 {
                "for camera localization (hdmap localize --camera; docs/formats/visual_map.md); points are \
                 triangulated with the registered trajectory and the drive's rig, images are not included"
                    .into()
            } else {
                "not produced: the drive has no camera0/ images".into()
            },
        },
    );
    let config_sha256 = sha256_file(&job.join("config.toml")).unwrap_or_default();
    let meta = Metadata {
        name,
        hdmap_version: env!("CARGO_PKG_VERSION").into(),
        epsg: layout.origin.epsg,
        vertical_datum: layout.origin.vertical_datum.to_string(),
        origin: layout.origin.origin,
        coverage,
        coverage_wgs84,
        coverage_km2,
        layers,
        licence: opts.licence_id.clone(),
        config_sha256,
    };
    let text = serde_json::to_string_pretty(&meta).map_err(|e| err(e.to_string()))?;
    hdmap_io::fsutil::write_bytes_atomic(&partial.join("metadata.json"), text.as_bytes())?;

    let mut files = BTreeMap::new();
    for rel in files_under(&partial)? {
        let p = partial.join(&rel);
        let bytes = std::fs::metadata(&p).map_err(os(&p))?.len();
        files.insert(rel, FileEntry { sha256: sha256_file(&p)?, bytes });
    }
    let manifest = PublishManifest { hdmap_version: env!("CARGO_PKG_VERSION").into(), files };
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| err(e.to_string()))?;
    hdmap_io::fsutil::write_bytes_atomic(&partial.join(MANIFEST), text.as_bytes())?;
    std::fs::rename(&partial, out).map_err(os(out))?;
    Ok(meta)
}

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";

/// Checks a published map; returns one line per problem (empty when it is intact).
pub fn verify(dir: &Path) -> Result<Vec<String>, PipelineError> {
    let mpath = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&mpath).map_err(os(&mpath))?;
    let manifest: PublishManifest = serde_json::from_str(&text)
        .map_err(|e| PipelineError::Config { path: mpath.clone(), message: e.to_string() })?;
    let mut problems = Vec::new();
    for (rel, want) in &manifest.files {
        let p = dir.join(rel);
        match std::fs::metadata(&p) {
            Err(_) => problems.push(format!("{rel}: missing")),
            Ok(m) if m.len() != want.bytes => {
                problems.push(format!("{rel}: {} bytes, manifest says {}", m.len(), want.bytes))
            }
            Ok(_) => {
                if sha256_file(&p)? != want.sha256 {
                    problems.push(format!("{rel}: SHA-256 differs from the manifest"));
                }
            }
        }
    }
    for rel in files_under(dir)? {
        if rel != MANIFEST && !manifest.files.contains_key(&rel) {
            problems.push(format!("{rel}: not in the manifest"));
        }
    }
    for required in ["metadata.json", "LICENSE"] {
        if !manifest.files.contains_key(required) {
            problems.push(format!("{required}: not in the manifest"));
        }
    }
    if let Ok(t) = std::fs::read_to_string(dir.join("metadata.json")) {
        match serde_json::from_str::<Metadata>(&t) {
            Ok(m) => {
                if m.coverage.len() < 4 || m.coverage.first() != m.coverage.last() {
                    problems.push("metadata.json: coverage is not a closed polygon".into());
                }
                if m.licence.trim().is_empty() {
                    problems.push("metadata.json: no licence".into());
                }
                for (name, layer) in &m.layers {
                    let prefix = format!("{}/", layer.folder);
                    if layer.present && !manifest.files.keys().any(|f| f.starts_with(&prefix)) {
                        problems
                            .push(format!("metadata.json: layer {name} is present but {prefix} is empty"));
                    }
                }
            }
            Err(e) => problems.push(format!("metadata.json: {e}")),
        }
    }
    if std::fs::read_to_string(dir.join("LICENSE")).is_ok_and(|t| t.trim().is_empty()) {
        problems.push("LICENSE: empty".into());
    }
    Ok(problems)
}
