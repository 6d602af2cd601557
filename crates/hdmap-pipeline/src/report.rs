//! `<job>/report/`: a static HTML page (no network needed) with PNG figures — the road layout
//! over the orthophoto, a top-down view of the registered cloud, a heat map of where LiDAR paint
//! points disagree with the layout — and per-stage metrics and timings.
//!
//! The report is rebuilt at the end of every run (its timings change from run to run; its
//! figures are deterministic). Stage timings persist in `<job>/timings.json`, written when a
//! stage finishes, so a stage skipped later still shows how long it took when it ran.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hdmap_core::{Issues, PointCloud, RoadLayout};
use hdmap_io::IoError;
use hdmap_register::anchor::{MAX_GATE_M, PaintHit, PaintModel};
use hdmap_register::output::Spread;
use image::{Rgb, RgbImage};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{LoadedConfig, PipelineError, Stage, StageReport, fresh_dir, os, swap_dir};

/// Report folder under the job.
pub const REPORT_DIR: &str = "report";
/// Stage timings under the job.
pub const TIMINGS: &str = "timings.json";

/// Figures of the report (file names under `report/`).
pub mod figures {
    /// Orthophoto with the extracted layout drawn on it.
    pub const LAYOUT: &str = "layout_on_ortho.png";
    /// Registered cloud, top-down, intensity.
    pub const CLOUD: &str = "cloud_top_down.png";
    /// Paint-point residual heat map over the cloud.
    pub const RESIDUALS: &str = "registration_residuals.png";
    /// The static cloud after dynamic-object removal.
    pub const CLOUD_AFTER: &str = "cloud_after_removal.png";
    /// The removed points in red over the static cloud.
    pub const REMOVED: &str = "removed_points.png";
}

/// How long a stage took when it last ran, and what it said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTiming {
    /// Wall time, seconds.
    pub seconds: f64,
    /// Its summary line.
    pub summary: String,
}

fn read_timings(job: &Path) -> BTreeMap<String, StageTiming> {
    std::fs::read_to_string(job.join(TIMINGS))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Records a finished stage in `<job>/timings.json`.
pub(crate) fn record_timing(job: &Path, stage: Stage, seconds: f64, summary: &str) -> Result<(), IoError> {
    let mut t = read_timings(job);
    t.insert(stage.name().to_string(), StageTiming { seconds, summary: summary.to_string() });
    let text = serde_json::to_string_pretty(&t).unwrap_or_default();
    hdmap_io::fsutil::write_bytes_atomic(&job.join(TIMINGS), text.as_bytes())
}

/// Paint points of the registered cloud against the layout.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PaintAgreement {
    /// Ground points on the road (within 0.15 m of the layout's height).
    pub ground_points: usize,
    /// Of those, points bright enough to be paint.
    pub paint_points: usize,
    /// Paint points on or within the association gate of the layout's paint.
    pub matched: usize,
    /// Median distance of matched paint points to the layout's paint, cm (0 inside).
    pub median_cm: f64,
    /// 95th percentile, cm.
    pub p95_cm: f64,
}

/// `report/metrics.json`: what the run measured about its own layers (no ground truth needed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportMetrics {
    /// Ground sample distance of the orthophoto, m.
    pub ortho_gsd_m: Option<f64>,
    /// LiDAR paint against the layout's paint.
    pub paint: Option<PaintAgreement>,
    /// Points in the registered cloud.
    pub cloud_points: usize,
}

/// The metrics file under `report/`.
pub const METRICS: &str = "metrics.json";

/// What [`write_report`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSummary {
    /// `report/index.html`.
    pub index: PathBuf,
    /// Figures written (file names under `report/`).
    pub figures: Vec<String>,
    /// Paint agreement of the registered cloud, when there is one.
    pub paint: Option<PaintAgreement>,
}

/// A top-down raster over the bounds of a cloud.
struct Grid {
    min: [f64; 2],
    cell_m: f64,
    w: u32,
    h: u32,
}

impl Grid {
    fn over(cloud: &PointCloud, max_px: u32) -> Option<Self> {
        let (lo, hi) = cloud.bounds()?;
        let b = [lo[0], lo[1], hi[0], hi[1]];
        let extent = (b[2] - b[0]).max(b[3] - b[1]);
        if !(extent.is_finite() && extent > 0.0) {
            return None;
        }
        let cell_m = (extent / max_px as f64).max(0.1);
        let w = ((b[2] - b[0]) / cell_m) as u32 + 1;
        let h = ((b[3] - b[1]) / cell_m) as u32 + 1;
        Some(Self { min: [b[0], b[3]], cell_m, w, h })
    }

    fn index(&self, x: f64, y: f64) -> Option<usize> {
        let c = ((x - self.min[0]) / self.cell_m).floor();
        let r = ((self.min[1] - y) / self.cell_m).floor();
        (c >= 0.0 && r >= 0.0 && (c as u32) < self.w && (r as u32) < self.h)
            .then(|| r as usize * self.w as usize + c as usize)
    }
}

/// Intensity image of a cloud (mean per cell, gamma 0.5 over the 99th percentile).
fn intensity_image(cloud: &PointCloud, g: &Grid) -> RgbImage {
    let n = (g.w * g.h) as usize;
    let mut acc = vec![(0.0f64, 0u32); n];
    let inten = cloud.intensity.as_deref();
    for i in 0..cloud.len() {
        let p = cloud.positions.get(i);
        if let Some(k) = g.index(p[0], p[1]) {
            acc[k].0 += inten.map_or(128.0, |v| v[i] as f64);
            acc[k].1 += 1;
        }
    }
    let mut means: Vec<f64> = acc.iter().filter(|a| a.1 > 0).map(|a| a.0 / a.1 as f64).collect();
    means.sort_by(f64::total_cmp);
    let top = means.get(means.len().saturating_sub(1) * 99 / 100).copied().unwrap_or(1.0).max(1e-6);
    let mut img = RgbImage::from_pixel(g.w, g.h, Rgb([12, 12, 16]));
    for (k, a) in acc.iter().enumerate() {
        if a.1 > 0 {
            let v = ((a.0 / a.1 as f64) / top).clamp(0.0, 1.0).sqrt();
            let c = (40.0 + 215.0 * v) as u8;
            img.put_pixel(k as u32 % g.w, k as u32 / g.w, Rgb([c, c, c]));
        }
    }
    img
}

/// Colour ramp for a residual `t` in [0, 1]: blue → green → yellow → red.
fn ramp(t: f64) -> [u8; 3] {
    let stops = [[40.0, 90.0, 255.0], [30.0, 200.0, 90.0], [250.0, 220.0, 30.0], [230.0, 30.0, 30.0]];
    let x = t.clamp(0.0, 1.0) * 3.0;
    let i = (x.floor() as usize).min(2);
    let f = x - i as f64;
    let c = |k: usize| (stops[i][k] * (1.0 - f) + stops[i + 1][k] * f) as u8;
    [c(0), c(1), c(2)]
}

/// Residual at which the heat map saturates, m.
const RESIDUAL_FULL_SCALE_M: f64 = 0.30;
/// Cell of the heat map, m.
const RESIDUAL_CELL_M: f64 = 1.0;

/// Paint residuals of the cloud against the layout, and the heat map over `base`.
fn residual_map(
    cloud: &PointCloud,
    layout: &RoadLayout,
    config: &LoadedConfig,
    g: &Grid,
    base: &RgbImage,
) -> (Option<PaintAgreement>, RgbImage) {
    let anchor = &config.config.register.anchor;
    let model = PaintModel::new(layout, anchor.double_gap_m);
    let Some(inten) = cloud.intensity.as_deref() else { return (None, base.clone()) };
    // Ground on the road: within 0.15 m of the layout's height there.
    let ground: Vec<(usize, f32)> = (0..cloud.len())
        .into_par_iter()
        .filter_map(|i| {
            let p = cloud.positions.get(i);
            let z = model.height([p[0], p[1]])?;
            ((p[2] - z).abs() <= 0.15).then_some((i, inten[i]))
        })
        .collect();
    if ground.is_empty() {
        return (None, base.clone());
    }
    let mut sorted: Vec<f32> = ground.iter().map(|g| g.1).collect();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2] as f64;
    let paint: Vec<usize> = ground
        .iter()
        .filter(|g| g.1 as f64 >= anchor.intensity_ratio * median.max(1e-6))
        .map(|g| g.0)
        .collect();
    let hits: Vec<([f64; 2], Option<f64>)> = paint
        .par_iter()
        .map(|&i| {
            let p = cloud.positions.get(i);
            let d = match model.query([p[0], p[1]], MAX_GATE_M) {
                Some(PaintHit::Inside { .. }) => Some(0.0),
                Some(PaintHit::Outside { d, .. }) => Some(d),
                None => None,
            };
            ([p[0], p[1]], d)
        })
        .collect();
    // Heat map: mean residual per metre cell, drawn over the darkened cloud.
    let mut img = base.clone();
    for p in img.pixels_mut() {
        p.0 = p.0.map(|c| c / 3);
    }
    let per = (RESIDUAL_CELL_M / g.cell_m).max(1.0);
    let mut cells: BTreeMap<(i64, i64), (f64, u32)> = BTreeMap::new();
    // Bright points farther than the gate from any paint (kerbs, sidewalk texture, paint the
    // layout lacks) are counted in the figures, not drawn.
    for (p, d) in hits.iter().filter_map(|(p, d)| Some((p, (*d)?))) {
        let key =
            (((p[0] - g.min[0]) / RESIDUAL_CELL_M) as i64, ((g.min[1] - p[1]) / RESIDUAL_CELL_M) as i64);
        let e = cells.entry(key).or_insert((0.0, 0));
        e.0 += d;
        e.1 += 1;
    }
    for ((cx, cy), (sum, n)) in cells {
        let color = Rgb(ramp(sum / n as f64 / RESIDUAL_FULL_SCALE_M));
        let (x0, y0) = ((cx as f64 * per) as u32, (cy as f64 * per) as u32);
        for y in y0..(y0 + per.ceil() as u32).min(g.h) {
            for x in x0..(x0 + per.ceil() as u32).min(g.w) {
                img.put_pixel(x, y, color);
            }
        }
    }
    let d: Vec<f64> = hits.iter().filter_map(|h| h.1).collect();
    let matched = d.len();
    let spread = Spread::of(d);
    let agreement = PaintAgreement {
        ground_points: ground.len(),
        paint_points: paint.len(),
        matched,
        median_cm: spread.map_or(f64::NAN, |s| s.median * 100.0),
        p95_cm: spread.map_or(f64::NAN, |s| s.p95 * 100.0),
    };
    (Some(agreement), img)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn save(img: &RgbImage, path: &Path) -> Result<(), IoError> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
        .map_err(|e| IoError::Os { path: path.to_path_buf(), source: std::io::Error::other(e) })?;
    hdmap_io::fsutil::write_bytes_atomic(path, &bytes)
}

/// Writes `<job>/report/` (built in `.report.partial`, renamed into place) for a run whose
/// stages reported `reports`.
pub fn write_report(
    config: &LoadedConfig,
    reports: &[StageReport],
    issues: &Issues,
) -> Result<ReportSummary, PipelineError> {
    let err = |m: String| PipelineError::Stage { stage: "report", message: m };
    let job = config.job_dir();
    let partial = fresh_dir(&job.join(format!(".{REPORT_DIR}.partial")))?;
    let (ortho, _, _) = config.inputs();
    let layout_path = job.join(Stage::Layout.name()).join("layout.gpkg");
    let cloud_path = job.join(Stage::Register.name()).join(hdmap_register::output::files::CLOUD);
    let layout = hdmap_io::layout::read_layout_gpkg(&layout_path)?;
    let mut figures_written = Vec::new();

    // The layout over the orthophoto, in the layout's CRS.
    let png = partial.join(figures::LAYOUT);
    let r = hdmap_io::raster::Raster::open(&ortho)?;
    if hdmap_io::raster::is_geographic(&r.georef()?.crs) {
        let tmp = tempfile::tempdir_in(&partial).map_err(os(&partial))?;
        let warped = tmp.path().join("ortho.tif");
        hdmap_io::raster::warp(&ortho, &warped, layout.origin.epsg, r.info.gsd_m.unwrap_or(1.0))?;
        hdmap_sim::preview::ortho_with_layout(&warped, &layout, &png, 1600)
            .map_err(|e| err(e.to_string()))?;
    } else {
        hdmap_sim::preview::ortho_with_layout(&ortho, &layout, &png, 1600).map_err(|e| err(e.to_string()))?;
    }
    figures_written.push(figures::LAYOUT.to_string());

    // The registered cloud and the paint residuals.
    let mut paint = None;
    let cloud = hdmap_io::las::read_las(&cloud_path, |_| {})?.cloud;
    if let Some(g) = Grid::over(&cloud, 1600) {
        let base = intensity_image(&cloud, &g);
        save(&base, &partial.join(figures::CLOUD))?;
        figures_written.push(figures::CLOUD.to_string());
        let (agreement, heat) = residual_map(&cloud, &layout, config, &g, &base);
        save(&heat, &partial.join(figures::RESIDUALS))?;
        figures_written.push(figures::RESIDUALS.to_string());
        paint = agreement;
        // After dynamic-object removal, on the same grid.
        let clean = job.join(Stage::Clean.name());
        let (static_path, removed_path) =
            (clean.join(hdmap_dynamic::files::STATIC), clean.join(hdmap_dynamic::files::REMOVED));
        if static_path.exists() && removed_path.exists() {
            let kept = hdmap_io::las::read_las(&static_path, |_| {})?.cloud;
            let removed = hdmap_io::las::read_las(&removed_path, |_| {})?.cloud;
            let after = intensity_image(&kept, &g);
            save(&after, &partial.join(figures::CLOUD_AFTER))?;
            figures_written.push(figures::CLOUD_AFTER.to_string());
            let mut img = after;
            for p in img.pixels_mut() {
                p.0 = p.0.map(|c| c / 2);
            }
            for i in 0..removed.len() {
                let p = removed.positions.get(i);
                if let Some(k) = g.index(p[0], p[1]) {
                    img.put_pixel(k as u32 % g.w, k as u32 / g.w, Rgb([255, 40, 40]));
                }
            }
            save(&img, &partial.join(figures::REMOVED))?;
            figures_written.push(figures::REMOVED.to_string());
        }
    }

    let metrics = ReportMetrics { ortho_gsd_m: r.info.gsd_m, paint, cloud_points: cloud.len() };
    let text = serde_json::to_string_pretty(&metrics).map_err(|e| err(e.to_string()))?;
    hdmap_io::fsutil::write_bytes_atomic(&partial.join(METRICS), text.as_bytes())?;
    let html = page(config, reports, issues, &layout, &cloud, paint.as_ref(), &figures_written);
    hdmap_io::fsutil::write_bytes_atomic(&partial.join("index.html"), html.as_bytes())?;
    let dir = job.join(REPORT_DIR);
    swap_dir(&partial, &dir)?;
    Ok(ReportSummary { index: dir.join("index.html"), figures: figures_written, paint })
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Rows of a JSON object of spreads (`{"median":..,"p95":..,"max":..}`) or plain values.
fn metric_rows(v: &serde_json::Value, out: &mut String) {
    let Some(obj) = v.as_object() else { return };
    for (k, v) in obj {
        let cell = match v {
            serde_json::Value::Object(o) if o.contains_key("median") => {
                let f =
                    |n: &str| o.get(n).and_then(|x| x.as_f64()).map_or("–".into(), |x| format!("{x:.3}"));
                format!("median {} · p95 {} · max {}", f("median"), f("p95"), f("max"))
            }
            serde_json::Value::Object(o) => {
                o.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(" · ")
            }
            serde_json::Value::Array(_) => continue,
            serde_json::Value::Null => "–".into(),
            other => other.to_string(),
        };
        let _ = writeln!(out, "<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&cell));
    }
}

fn figure(out: &mut String, figures_written: &[String], name: &str, caption: &str) {
    if figures_written.iter().any(|f| f == name) {
        let _ = writeln!(
            out,
            "<figure><a href=\"{name}\"><img src=\"{name}\" alt=\"{}\"></a><figcaption>{caption}</figcaption></figure>",
            esc(caption)
        );
    } else {
        let _ = writeln!(out, "<p class=\"missing\">{name}: not produced</p>");
    }
}

#[allow(clippy::too_many_arguments)]
fn page(
    config: &LoadedConfig,
    reports: &[StageReport],
    issues: &Issues,
    layout: &RoadLayout,
    cloud: &PointCloud,
    paint: Option<&PaintAgreement>,
    figures_written: &[String],
) -> String {
    let job = config.job_dir();
    let timings = read_timings(&job);
    let o = &layout.origin;
    let mut h = String::new();
    h.push_str(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n",
        "<title>hdmap report</title>\n<style>\n",
        "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222}\n",
        "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}\n",
        "th{background:#f4f4f4;font-weight:600}figure{margin:12px 0}img{max-width:100%;border:1px solid #999}\n",
        "figcaption{color:#555}.missing{color:#a00}.legend span{display:inline-block;width:14px;height:10px;margin:0 4px 0 10px}\n",
        "</style></head>\n<body>\n<h1>hdmap report</h1>\n"
    ));
    let _ = writeln!(
        h,
        "<p>Config <code>{}</code> · job <code>{}</code> · hdmap {}</p>",
        esc(&config.path.display().to_string()),
        esc(&job.display().to_string()),
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        h,
        "<p id=\"images-status\">Figures: {} (checked when the page loads).</p>",
        figures_written.len()
    );
    let _ = writeln!(
        h,
        "<table><tr><th>CRS</th><td>EPSG:{}</td></tr><tr><th>vertical datum</th><td>{}</td></tr>\
         <tr><th>map origin</th><td>{:.3}, {:.3}, {:.3}</td></tr></table>",
        o.epsg, o.vertical_datum, o.origin[0], o.origin[1], o.origin[2]
    );

    h.push_str("<h2>Stages</h2>\n<table><tr><th>stage</th><th>this run</th><th>time when it ran</th><th>what it produced</th></tr>\n");
    for r in reports {
        let t = timings.get(r.stage.name());
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            r.stage.name(),
            if r.skipped { "up to date (skipped)" } else { "ran" },
            t.map_or("–".into(), |t| format!("{:.1} s", t.seconds)),
            esc(&t.map_or(r.summary.clone(), |t| t.summary.clone()))
        );
    }
    h.push_str("</table>\n");

    h.push_str("<h2>Road layout over the orthophoto</h2>\n");
    let _ = writeln!(
        h,
        "<p>{} lane boundaries, {} lanes, {} stop lines, {} crosswalks, {} surface marks, {} road edges.</p>",
        layout.lane_boundaries.len(),
        layout.lanes.len(),
        layout.stop_lines.len(),
        layout.crosswalks.len(),
        layout.surface_marks.len(),
        layout.road_edges.len()
    );
    h.push_str(concat!(
        "<p class=\"legend\">",
        "<span style=\"background:#ff3c3c\"></span>solid line",
        "<span style=\"background:#00ff78\"></span>dashed line",
        "<span style=\"background:#ffaa00\"></span>double solid",
        "<span style=\"background:#a03cff\"></span>road edge",
        "<span style=\"background:#2878ff\"></span>lane centre line",
        "<span style=\"background:#ff0000\"></span>stop line",
        "<span style=\"background:#ffff00\"></span>crosswalk",
        "<span style=\"background:#00ffff\"></span>surface mark",
        "<span style=\"background:#ff00c8\"></span>road centre line</p>\n"
    ));
    figure(&mut h, figures_written, figures::LAYOUT, "Extracted road layout drawn on the orthophoto.");

    h.push_str("<h2>Point cloud, top-down</h2>\n");
    let _ = writeln!(h, "<p>{} points (registered keyframe scans, intensity).</p>", cloud.len());
    h.push_str("<h3>Before dynamic-object removal</h3>\n");
    figure(&mut h, figures_written, figures::CLOUD, "Registered cloud, mean intensity per cell.");
    h.push_str("<h3>After dynamic-object removal</h3>\n");
    if let Some(c) = read_json(&job.join(Stage::Clean.name()).join(hdmap_dynamic::files::REPORT)) {
        let how = if c["model"].is_object() {
            format!(
                "segmentation model ({}, classes per point: {}) fused with the free-space check, parked \
                 cars {}",
                esc(c["model"]["card"]["architecture"].as_str().unwrap_or("?")),
                esc(&c["model"]["classes"].to_string()),
                if c["config"]["model"]["keep_parked"].as_bool() == Some(true) { "kept" } else { "removed" }
            )
        } else {
            "free-space check".to_string()
        };
        let _ = writeln!(
            h,
            "<p>{} of {} points removed over {} scans ({how}; reasons: {}). The exported point-cloud \
             layers are the kept points.</p>",
            c["removed"],
            c["points"],
            c["scans"],
            esc(&c["reasons"].to_string())
        );
    }
    figure(&mut h, figures_written, figures::CLOUD_AFTER, "Static cloud: what the map keeps.");
    figure(&mut h, figures_written, figures::REMOVED, "Removed points (red) over the static cloud.");

    h.push_str("<h2>Registration</h2>\n");
    match paint {
        Some(p) => {
            let _ = writeln!(
                h,
                "<p>LiDAR paint points against the layout's paint: {} ground points on the road, {} bright \
                 enough to be paint, {} within {:.1} m of the layout's paint; distance median {:.1} cm, \
                 95th percentile {:.1} cm.</p>",
                p.ground_points, p.paint_points, p.matched, MAX_GATE_M, p.median_cm, p.p95_cm
            );
        }
        None => h.push_str("<p class=\"missing\">No paint points found in the cloud.</p>\n"),
    }
    let scale: String = (0..=10)
        .map(|k| {
            let c = ramp(k as f64 / 10.0);
            format!(
                "<span style=\"background:rgb({},{},{})\"></span>{}",
                c[0],
                c[1],
                c[2],
                if k % 5 == 0 {
                    format!("{:.0} cm", k as f64 * RESIDUAL_FULL_SCALE_M * 10.0)
                } else {
                    String::new()
                }
            )
        })
        .collect();
    let _ = writeln!(
        h,
        "<p class=\"legend\">{scale} and above (bright points farther than {MAX_GATE_M} m from the layout's paint are \
         not drawn)</p>"
    );
    figure(
        &mut h,
        figures_written,
        figures::RESIDUALS,
        "Mean distance of LiDAR paint points to the layout's paint per 1 m cell, over the darkened cloud.",
    );
    let reg = read_json(&job.join(Stage::Register.name()).join(hdmap_register::output::files::REPORT));
    if let Some(reg) = reg {
        h.push_str("<table>\n");
        metric_rows(&reg, &mut h);
        h.push_str(
            "</table>\n<p>Corrections and sigmas in cm, rotations in degrees (register/report.json).</p>\n",
        );
    }

    h.push_str("<h2>Exported layers</h2>\n<table><tr><th>file</th><th>size</th></tr>\n");
    let export = job.join(Stage::Export.name());
    if let Some(m) = read_json(&export.join("manifest.json"))
        && let Some(outputs) = m["outputs"].as_object()
    {
        let mut groups: BTreeMap<String, (usize, u64)> = BTreeMap::new();
        for rel in outputs.keys() {
            let size = std::fs::metadata(export.join(rel)).map(|m| m.len()).unwrap_or(0);
            let parts: Vec<&str> = rel.split('/').collect();
            let key = if parts.len() > 2 { format!("{}/{}/ ", parts[0], parts[1]) } else { rel.clone() };
            let e = groups.entry(key).or_default();
            e.0 += 1;
            e.1 += size;
        }
        for (k, (n, size)) in groups {
            let what = if n > 1 { format!("{n} files, ") } else { String::new() };
            let _ = writeln!(
                h,
                "<tr><td><code>{}</code></td><td>{what}{:.1} kB</td></tr>",
                esc(k.trim()),
                size as f64 / 1e3
            );
        }
    }
    h.push_str("</table>\n");

    h.push_str("<h2>Findings</h2>\n");
    if issues.is_empty() {
        h.push_str("<p>None in this run.</p>\n");
    } else {
        h.push_str("<ul>\n");
        for i in issues.iter() {
            let _ = writeln!(h, "<li>{}</li>", esc(&i.to_string()));
        }
        h.push_str("</ul>\n");
    }
    // Says on the page whether every figure loaded (and lets a headless browser check it).
    h.push_str(concat!(
        "<script>\nwindow.addEventListener('load', function () {\n",
        "  var imgs = Array.prototype.slice.call(document.images);\n",
        "  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;\n",
        "  document.body.setAttribute('data-images-loaded', ok + '/' + imgs.length);\n",
        "  document.getElementById('images-status').textContent = 'Figures: ' + ok + ' of ' + imgs.length + ' loaded.';\n",
        "});\n</script>\n</body></html>\n"
    ));
    h
}
