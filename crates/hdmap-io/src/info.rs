//! `hdmap info`: what a mapping engineer wants to know about any supported file.
//!
//! [`describe`] detects the kind of file (by extension, then by content) and returns a
//! [`FileReport`]: point clouds (count, fields, bounds, CRS, time span, density), rasters (size,
//! bands, GSD, CRS, bounds), vector layers (feature counts, geometry types), trajectories (span,
//! length, rate) and images.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::path::Path;

use hdmap_core::{Crs, FrameId, PointCloud, TimeBase, Trajectory};
use serde::Serialize;

use crate::IoError;
use crate::fsutil::check_input_file;
use crate::las::{LasHeaderInfo, read_las};
use crate::pcd::{PcdHeader, read_pcd};
use crate::raster::{Raster, RasterInfo};
use crate::trajectory::{TrajectoryFormat, detect_format, read_3x4, read_ins_csv, read_pose_csv, read_tum};
use crate::vector::{VectorInfo, vector_info};

/// Summary of a point cloud file.
#[derive(Debug, Clone, Serialize)]
pub struct CloudReport {
    /// `LAS 1.4 format 6 (LAZ)`, `PCD binary_compressed`, `KITTI bin`.
    pub format: String,
    /// Point count announced by the header.
    pub header_point_count: Option<u64>,
    /// Points read.
    pub point_count: usize,
    /// Points dropped because a coordinate was not finite (PCD).
    pub dropped_non_finite: usize,
    /// Channel names.
    pub fields: Vec<String>,
    /// `[min, max]` of x, y, z.
    pub bounds: Option<[[f64; 3]; 2]>,
    /// CRS, if declared.
    pub crs: Option<Crs>,
    /// Where the CRS came from.
    pub crs_source: Option<String>,
    /// Time base of per-point times.
    pub time_base: Option<TimeBase>,
    /// `[first, last]` per-point time, seconds.
    pub time_span_s: Option<[f64; 2]>,
    /// Horizontal area covered by points, m² (occupied 1 m × 1 m cells).
    pub covered_area_m2: Option<f64>,
    /// Points per m² over the covered area.
    pub density_per_m2: Option<f64>,
    /// Full LAS header, for LAS/LAZ.
    pub las: Option<LasHeaderInfo>,
    /// PCD header, for PCD.
    pub pcd: Option<PcdHeader>,
}

/// Summary of a trajectory file.
#[derive(Debug, Clone, Serialize)]
pub struct TrajectoryReport {
    /// File format.
    pub format: TrajectoryFormat,
    /// Frames: `target_from_source`.
    pub transform: String,
    /// Number of poses.
    pub poses: usize,
    /// First and last stamp, ns.
    pub span_ns: [i64; 2],
    /// Duration, s.
    pub duration_s: f64,
    /// Path length, m (CRS units).
    pub length_m: f64,
    /// Median rate, Hz.
    pub rate_hz: Option<f64>,
    /// Largest gap between poses, s.
    pub max_gap_s: f64,
    /// Mean and max speed from the velocity columns (INS), m/s.
    pub speed_mps: Option<[f64; 2]>,
}

/// Summary of a plain image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// Width, px.
    pub width: u32,
    /// Height, px.
    pub height: u32,
    /// Colour type.
    pub color: String,
}

/// Summary of a SemanticKITTI label file.
#[derive(Debug, Clone, Serialize)]
pub struct LabelReport {
    /// Number of labels (points).
    pub labels: usize,
    /// Points per class id.
    pub classes: std::collections::BTreeMap<u16, usize>,
    /// Distinct instance ids (excluding 0).
    pub instances: usize,
}

/// Summary of a TOML document (rig or config).
#[derive(Debug, Clone, Serialize)]
pub struct TomlReport {
    /// `rig` when the file parses as an hdmap rig, else `config`.
    pub kind: String,
    /// Top-level keys / tables.
    pub keys: Vec<String>,
    /// For rigs: each transform as `target_from_source: t=[..] m rpy=[..]°`.
    pub transforms: Vec<String>,
}

/// What [`describe`] found.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FileReport {
    /// LAS/LAZ/PCD/KITTI.
    PointCloud(Box<CloudReport>),
    /// GeoTIFF or other GDAL raster.
    Raster(RasterInfo),
    /// Vector layers.
    Vector(VectorInfo),
    /// A trajectory.
    Trajectory(TrajectoryReport),
    /// A non-georeferenced image.
    Image(ImageReport),
    /// SemanticKITTI labels.
    Labels(LabelReport),
    /// A TOML rig or config.
    Toml(TomlReport),
    /// An OSM XML map (Lanelet2).
    Osm(crate::osm::OsmSummary),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Las,
    Pcd,
    Kitti,
    Raster,
    Image,
    Vector,
    Trajectory,
    Labels,
    Toml,
    Osm,
}

fn sniff(path: &Path) -> Result<Kind, IoError> {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let has_world_file = ["wld", "jgw", "pgw", "tfw"].iter().any(|w| path.with_extension(w).exists());
    Ok(match ext.as_str() {
        "las" | "laz" => Kind::Las,
        "pcd" => Kind::Pcd,
        "bin" => Kind::Kitti,
        "tif" | "tiff" | "vrt" | "jp2" | "img" => Kind::Raster,
        "png" | "jpg" | "jpeg" if has_world_file => Kind::Raster,
        "png" | "jpg" | "jpeg" => Kind::Image,
        "gpkg" | "geojson" | "json" | "shp" => Kind::Vector,
        "csv" | "txt" => Kind::Trajectory,
        "label" => Kind::Labels,
        "toml" => Kind::Toml,
        "osm" => Kind::Osm,
        _ => {
            let mut head = [0u8; 16];
            let n = std::fs::File::open(path)
                .and_then(|mut f| f.read(&mut head))
                .map_err(|source| IoError::Os { path: path.to_path_buf(), source })?;
            let head = &head[..n];
            if head.starts_with(b"LASF") {
                Kind::Las
            } else if head.starts_with(b"# .PCD") || head.starts_with(b"VERSION") {
                Kind::Pcd
            } else if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
                Kind::Raster
            } else {
                return Err(IoError::Unsupported {
                    path: path.to_path_buf(),
                    detail: "unknown file kind (supported: LAS/LAZ, PCD, KITTI .bin, GeoTIFF, GPKG/GeoJSON/SHP, Lanelet2 OSM, trajectory CSV/TXT, PNG/JPEG)".into(),
                });
            }
        }
    })
}

/// Horizontal cells of 1 m occupied by the cloud, given CRS units per metre.
fn coverage(cloud: &PointCloud, units_per_m: f64) -> (f64, f64) {
    let mut cells = HashSet::new();
    for p in cloud.positions.iter() {
        cells.insert(((p[0] / units_per_m).floor() as i64, (p[1] / units_per_m).floor() as i64));
    }
    let area = cells.len() as f64;
    (area, if area > 0.0 { cloud.len() as f64 / area } else { 0.0 })
}

fn units_per_metre(crs: &Option<Crs>) -> f64 {
    let wkt = match crs {
        Some(Crs::Wkt { wkt, .. }) => Some(wkt.clone()),
        Some(Crs::Epsg(c)) => crate::crs::wkt_for_epsg(*c),
        None => None,
    };
    wkt.and_then(|w| gdal::spatial_ref::SpatialRef::from_wkt(&w).ok())
        .filter(|s| s.is_projected())
        .map(|s| 1.0 / s.linear_units())
        .unwrap_or(1.0)
}

fn cloud_report(format: String, cloud: &PointCloud, crs: Option<Crs>) -> CloudReport {
    let time_span_s = cloud.time_s.as_ref().filter(|t| !t.is_empty()).map(|t| {
        [t.iter().copied().fold(f64::INFINITY, f64::min), t.iter().copied().fold(f64::NEG_INFINITY, f64::max)]
    });
    let (area, density) = if crs.as_ref().is_some_and(|c| c.epsg() == Some(4326)) {
        (None, None) // degrees: a 1-unit grid means nothing
    } else {
        let (a, d) = coverage(cloud, units_per_metre(&crs));
        (Some(a), Some(d))
    };
    CloudReport {
        format,
        header_point_count: None,
        point_count: cloud.len(),
        dropped_non_finite: 0,
        fields: cloud.channel_names(),
        bounds: cloud.bounds().map(|(lo, hi)| [lo, hi]),
        crs,
        crs_source: None,
        time_base: cloud.time_s.as_ref().map(|_| cloud.time_base),
        time_span_s,
        covered_area_m2: area,
        density_per_m2: density,
        las: None,
        pcd: None,
    }
}

fn trajectory_report(format: TrajectoryFormat, t: &Trajectory, speeds: Option<Vec<f64>>) -> TrajectoryReport {
    let (a, b) = t.span_ns();
    TrajectoryReport {
        format,
        transform: format!("{}_from_{}", t.target, t.source),
        poses: t.poses.len(),
        span_ns: [a, b],
        duration_s: t.duration_s(),
        length_m: t.length_m(),
        rate_hz: t.median_rate_hz(),
        max_gap_s: t.max_gap_s(),
        speed_mps: speeds
            .filter(|s| !s.is_empty())
            .map(|s| [s.iter().sum::<f64>() / s.len() as f64, s.iter().copied().fold(0.0, f64::max)]),
    }
}

/// Describes any supported file. `progress` gets (done, total) point counts for long reads.
pub fn describe(path: &Path, mut progress: impl FnMut(u64, u64)) -> Result<FileReport, IoError> {
    check_input_file(path)?;
    Ok(match sniff(path)? {
        Kind::Las => {
            let header = crate::las::read_las_header(path)?;
            let total = header.point_count;
            let f = read_las(path, |done| progress(done, total))?;
            let kind = if f.header.copc {
                "COPC"
            } else if f.header.compressed {
                "LAZ"
            } else {
                "LAS"
            };
            let format = format!(
                "{kind} {}.{} point format {}",
                f.header.version.0, f.header.version.1, f.header.point_format
            );
            let mut r = cloud_report(format, &f.cloud, f.header.crs.clone());
            r.header_point_count = Some(f.header.point_count);
            r.crs_source = f.header.crs_source.clone();
            r.las = Some(f.header);
            FileReport::PointCloud(Box::new(r))
        }
        Kind::Pcd => {
            let f = read_pcd(path)?;
            let enc = serde_json::to_value(f.header.encoding)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            let mut r = cloud_report(format!("PCD {} {enc}", f.header.version), &f.cloud, None);
            r.header_point_count = Some(f.header.points as u64);
            r.dropped_non_finite = f.dropped_non_finite;
            r.pcd = Some(f.header);
            FileReport::PointCloud(Box::new(r))
        }
        Kind::Kitti => {
            let c = crate::kitti::read_kitti_bin(path, FrameId::Lidar(0))?;
            FileReport::PointCloud(Box::new(cloud_report(
                "KITTI bin (f32 x y z reflectance)".into(),
                &c,
                None,
            )))
        }
        Kind::Raster => {
            // A raster reached here is meant as a map layer (GeoTIFF, or an image with a world
            // file): without CRS and geotransform it would place the map nowhere, so say so.
            let r = Raster::open(path)?;
            r.georef()?;
            r.check_readable()?;
            FileReport::Raster(r.info)
        }
        Kind::Image => {
            let img = crate::image::read_image(path)?;
            FileReport::Image(ImageReport {
                width: img.width(),
                height: img.height(),
                color: format!("{:?}", img.color()),
            })
        }
        Kind::Vector => FileReport::Vector(vector_info(path)?),
        Kind::Osm => FileReport::Osm(crate::osm::summarize(&crate::osm::read_osm(path)?)),
        Kind::Labels => {
            let labels = crate::labels::read_labels(path, None)?;
            let mut classes = std::collections::BTreeMap::new();
            let mut inst = std::collections::BTreeSet::new();
            for l in &labels {
                *classes.entry((l & 0xFFFF) as u16).or_insert(0) += 1;
                if l >> 16 != 0 {
                    inst.insert(l >> 16);
                }
            }
            FileReport::Labels(LabelReport { labels: labels.len(), classes, instances: inst.len() })
        }
        Kind::Toml => {
            let text = std::fs::read_to_string(path)
                .map_err(|source| IoError::Os { path: path.to_path_buf(), source })?;
            let doc: toml::Table = toml::from_str(&text).map_err(|e| IoError::Format {
                path: path.to_path_buf(),
                format: "TOML",
                detail: crate::error::one_line(&e),
            })?;
            let keys = doc.keys().cloned().collect();
            if doc.contains_key("extrinsic") {
                let rig = crate::rig::read_rig(path)?;
                let transforms = rig
                    .extrinsics
                    .iter()
                    .map(|e| {
                        let t = e.target_from_source.translation.vector;
                        let (r, p, y) = e.target_from_source.rotation.euler_angles();
                        format!(
                            "{}_from_{}: t=[{:.4}, {:.4}, {:.4}] m rpy=[{:.3}, {:.3}, {:.3}]° clock offset {} ns",
                            e.target,
                            e.source,
                            t.x,
                            t.y,
                            t.z,
                            r.to_degrees(),
                            p.to_degrees(),
                            y.to_degrees(),
                            e.time_offset_ns
                        )
                    })
                    .collect();
                FileReport::Toml(TomlReport { kind: "rig".into(), keys, transforms })
            } else {
                FileReport::Toml(TomlReport { kind: "config".into(), keys, transforms: Vec::new() })
            }
        }
        Kind::Trajectory => {
            let format = detect_format(path)?;
            let (t, speeds) = match format {
                TrajectoryFormat::PoseCsv => (read_pose_csv(path, FrameId::World, FrameId::Vehicle)?, None),
                TrajectoryFormat::Tum => (read_tum(path, FrameId::World, FrameId::Vehicle)?, None),
                TrajectoryFormat::Stamped3x4 => {
                    (read_3x4(path, None, FrameId::World, FrameId::Vehicle)?, None)
                }
                TrajectoryFormat::KittiPoses => {
                    // KITTI poses carry no stamps: number them at the nominal 10 Hz, say so in the format.
                    let text = std::fs::read_to_string(path)
                        .map_err(|source| IoError::Os { path: path.to_path_buf(), source })?;
                    let n = text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).count();
                    let stamps: Vec<i64> = (0..n as i64).map(|i| i * 100_000_000).collect();
                    (read_3x4(path, Some(&stamps), FrameId::World, FrameId::Lidar(0))?, None)
                }
                TrajectoryFormat::InsCsv => {
                    let ins = read_ins_csv(path, None)?;
                    let speeds = ins
                        .velocity_enu_mps
                        .iter()
                        .map(|v| (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt())
                        .collect();
                    (ins.trajectory, Some(speeds))
                }
            };
            FileReport::Trajectory(trajectory_report(format, &t, speeds))
        }
    })
}

fn fmt_crs(c: &Option<Crs>) -> String {
    c.as_ref().map(|c| c.to_string()).unwrap_or_else(|| "none declared".into())
}

impl fmt::Display for FileReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileReport::PointCloud(r) => {
                writeln!(f, "  kind      point cloud, {}", r.format)?;
                match r.header_point_count {
                    Some(h) if h as usize != r.point_count + r.dropped_non_finite => {
                        writeln!(f, "  points    {} (header says {h})", r.point_count)?
                    }
                    _ => writeln!(f, "  points    {}", r.point_count)?,
                }
                if r.dropped_non_finite > 0 {
                    writeln!(f, "  dropped   {} points with non-finite coordinates", r.dropped_non_finite)?;
                }
                writeln!(f, "  fields    {}", r.fields.join(" "))?;
                if let Some([lo, hi]) = r.bounds {
                    writeln!(f, "  bounds    x {:.3} .. {:.3}", lo[0], hi[0])?;
                    writeln!(f, "            y {:.3} .. {:.3}", lo[1], hi[1])?;
                    writeln!(f, "            z {:.3} .. {:.3}", lo[2], hi[2])?;
                }
                write!(f, "  crs       {}", fmt_crs(&r.crs))?;
                match &r.crs_source {
                    Some(s) => writeln!(f, " [{s}]")?,
                    None => writeln!(f)?,
                }
                if let (Some([a, b]), Some(base)) = (r.time_span_s, r.time_base) {
                    writeln!(f, "  time      {a:.6} .. {b:.6} s ({:.3} s, {base:?})", b - a)?;
                }
                if let (Some(area), Some(d)) = (r.covered_area_m2, r.density_per_m2) {
                    writeln!(f, "  density   {d:.1} pts/m² over {area:.0} m² covered (1 m cells)")?;
                }
                if let Some(h) = &r.las {
                    writeln!(f, "  scale     {:?} offset {:?}", h.scale, h.offset)?;
                    let vlrs: Vec<String> =
                        h.vlrs.iter().map(|v| format!("{}:{}", v.user_id, v.record_id)).collect();
                    writeln!(
                        f,
                        "  vlrs      {}",
                        if vlrs.is_empty() { "none".into() } else { vlrs.join(" ") }
                    )?;
                }
                Ok(())
            }
            FileReport::Raster(r) => {
                writeln!(f, "  kind      raster ({})", r.driver)?;
                writeln!(f, "  size      {} × {} px, {} bands", r.width, r.height, r.bands.len())?;
                let bands: Vec<String> =
                    r.bands.iter().map(|b| format!("{}/{}", b.color, b.data_type)).collect();
                writeln!(f, "  bands     {}", bands.join(" "))?;
                match (r.ground_pixel_m, r.pixel_size) {
                    (Some((gx, gy)), _) if (gx - gy).abs() < 1e-3 * gx.max(gy) => {
                        writeln!(f, "  gsd       {gx:.4} m")?
                    }
                    (Some((gx, gy)), _) => writeln!(
                        f,
                        "  gsd       {:.4} m (pixel {gx:.4} × {gy:.4} m on the ground)",
                        gx.max(gy)
                    )?,
                    (None, Some((px, py))) => writeln!(f, "  pixel     {px} × {py} (CRS units unknown)")?,
                    _ => writeln!(f, "  gsd       unknown (no geotransform)")?,
                }
                writeln!(f, "  crs       {}", fmt_crs(&r.crs))?;
                if let Some(b) = r.bounds {
                    writeln!(f, "  bounds    x {:.3} .. {:.3}, y {:.3} .. {:.3}", b[0], b[2], b[1], b[3])?;
                }
                Ok(())
            }
            FileReport::Vector(v) => {
                writeln!(f, "  kind      vector ({}), {} layers", v.driver, v.layers.len())?;
                for l in &v.layers {
                    let geoms: Vec<String> =
                        l.geometry_types.iter().map(|(k, n)| format!("{n} {k}")).collect();
                    writeln!(
                        f,
                        "  layer     {}: {} features ({}), crs {}",
                        l.name,
                        l.feature_count,
                        geoms.join(", "),
                        fmt_crs(&l.crs)
                    )?;
                    if !l.fields.is_empty() {
                        let fields: Vec<String> = l.fields.iter().map(|(n, t)| format!("{n}:{t}")).collect();
                        writeln!(f, "            fields {}", fields.join(" "))?;
                    }
                }
                Ok(())
            }
            FileReport::Trajectory(t) => {
                writeln!(f, "  kind      trajectory ({:?}), {}", t.format, t.transform)?;
                writeln!(f, "  poses     {} over {:.3} s, {:.3} m", t.poses, t.duration_s, t.length_m)?;
                writeln!(f, "  span      {} .. {} ns", t.span_ns[0], t.span_ns[1])?;
                if let Some(r) = t.rate_hz {
                    writeln!(f, "  rate      {r:.2} Hz (median), largest gap {:.3} s", t.max_gap_s)?;
                }
                if let Some([mean, max]) = t.speed_mps {
                    writeln!(f, "  speed     mean {mean:.2} m/s, max {max:.2} m/s")?;
                }
                Ok(())
            }
            FileReport::Image(i) => {
                writeln!(f, "  kind      image {} × {} px, {}", i.width, i.height, i.color)
            }
            FileReport::Labels(l) => {
                writeln!(
                    f,
                    "  kind      SemanticKITTI labels, {} points, {} instances",
                    l.labels, l.instances
                )?;
                let classes: Vec<String> = l.classes.iter().map(|(c, n)| format!("{c}:{n}")).collect();
                writeln!(f, "  classes   {}", classes.join(" "))
            }
            FileReport::Toml(t) => {
                writeln!(f, "  kind      TOML {} ({})", t.kind, t.keys.join(", "))?;
                for tr in &t.transforms {
                    writeln!(f, "  transform {tr}")?;
                }
                Ok(())
            }
            FileReport::Osm(o) => {
                let list = |m: &std::collections::BTreeMap<String, usize>| {
                    m.iter().map(|(k, v)| format!("{k}:{v}")).collect::<Vec<_>>().join(" ")
                };
                writeln!(
                    f,
                    "  kind      OSM map, {} nodes, {} ways, {} relations",
                    o.nodes, o.ways, o.relations
                )?;
                writeln!(f, "  lanelets  {} ({})", o.lanelets.values().sum::<usize>(), list(&o.lanelets))?;
                writeln!(
                    f,
                    "  reg.elems {} ({})",
                    o.regulatory_elements.values().sum::<usize>(),
                    list(&o.regulatory_elements)
                )?;
                writeln!(f, "  areas     {}", o.areas)?;
                writeln!(f, "  ways      {}", list(&o.way_types))?;
                writeln!(f, "  heights   {} of {} nodes carry ele", o.nodes_with_ele, o.nodes)?;
                let b = o.bounds_deg;
                writeln!(
                    f,
                    "  bounds    lat {:.7} .. {:.7}, lon {:.7} .. {:.7} (WGS84)",
                    b[0], b[2], b[1], b[3]
                )
            }
        }
    }
}
