//! `hdmap layout` and `hdmap train layout`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hdmap_core::{Issues, VerticalDatum};
use hdmap_layout::{LayoutConfig, config::SegmenterKind};

/// Which paint segmenter `hdmap layout` runs.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SegmenterArg {
    /// Local contrast + whiteness / yellowness thresholds.
    Classical,
    /// The trained U-Net (`--model`).
    Learned,
}

/// Arguments of `hdmap layout`.
#[derive(clap::Args)]
pub struct LayoutArgs {
    /// RGB orthophoto (GeoTIFF with an EPSG CRS).
    #[arg(long)]
    pub ortho: PathBuf,
    /// Surface model in the same CRS (heights of every vertex); without it every z is 0.
    #[arg(long)]
    pub dsm: Option<PathBuf>,
    /// Vertical datum of the DSM heights (kngeoid18, egm2008, navd88, ellipsoidal, EPSG:n).
    #[arg(long)]
    pub vertical_datum: VerticalDatum,
    /// Output GeoPackage (one layer per element kind); a GeoJSON with the same stem is written too.
    #[arg(long)]
    pub out: PathBuf,
    /// Paint segmenter (overrides the config file).
    #[arg(long, value_enum)]
    pub segmenter: Option<SegmenterArg>,
    /// Weights of the learned segmenter (overrides the config file).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Layout settings (TOML, the keys of `[layout]`; unknown keys are errors).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Also draw the extracted vectors over the orthophoto into this PNG.
    #[arg(long)]
    pub overlay: Option<PathBuf>,
}

/// Runs `hdmap layout`.
pub fn layout(a: &LayoutArgs) -> anyhow::Result<()> {
    let mut cfg: LayoutConfig = crate::read_config(a.config.as_deref())?;
    if let (Some(p), Err(m)) = (&a.config, cfg.validate()) {
        anyhow::bail!("{}: {m}", p.display());
    }
    if let Some(s) = a.segmenter {
        cfg.segmenter = match s {
            SegmenterArg::Classical => SegmenterKind::Classical,
            SegmenterArg::Learned => SegmenterKind::Learned,
        };
    }
    if let Some(m) = &a.model {
        cfg.model = Some(m.clone());
    }
    if a.out.extension().and_then(|e| e.to_str()) != Some("gpkg") {
        anyhow::bail!("--out {}: expected a .gpkg path", a.out.display());
    }
    let start = std::time::Instant::now();
    let mut issues = Issues::new();
    let layout =
        hdmap_layout::extract_layout(&a.ortho, a.dsm.as_deref(), a.vertical_datum, &cfg, &mut issues)?;
    let secs = start.elapsed().as_secs_f64();
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
    }
    hdmap_io::layout::write_layout_gpkg(&a.out, &layout)?;
    let geojson = a.out.with_extension("geojson");
    hdmap_io::layout::write_layout_geojson(&geojson, &layout)?;
    let r = hdmap_io::raster::Raster::open(&a.ortho)?;
    let g = r.georef()?;
    if let Some(png) = &a.overlay {
        // Draw in the layout's CRS: a geographic orthophoto is reprojected like the layout was.
        if hdmap_io::raster::is_geographic(&g.crs) {
            let dir = tempfile::tempdir()?;
            let warped = dir.path().join("ortho.tif");
            let epsg = layout.origin.epsg;
            hdmap_io::raster::warp(&a.ortho, &warped, epsg, r.info.gsd_m.unwrap_or(1.0))?;
            hdmap_sim::preview::ortho_with_layout(&warped, &layout, png, 4096)?;
        } else {
            hdmap_sim::preview::ortho_with_layout(&a.ortho, &layout, png, 4096)?;
        }
    }
    for i in issues.iter() {
        eprintln!("{i}");
    }
    let km2 = match r.info.ground_pixel_m {
        Some((gx, gy)) => r.info.width as f64 * r.info.height as f64 * gx * gy / 1e6,
        None => f64::NAN,
    };
    println!(
        "{} lane boundaries, {} road centre lines, {} stop lines, {} crosswalks, {} surface marks, {} lanes ({:.2} km of lane) from {:.3} km² in {:.1} s ({:.2} km²/min) → {}, {}",
        layout.lane_boundaries.len(),
        layout.road_centerlines.len(),
        layout.stop_lines.len(),
        layout.crosswalks.len(),
        layout.surface_marks.len(),
        layout.lanes.len(),
        layout
            .lanes
            .iter()
            .filter(|l| !l.in_intersection)
            .map(|l| polyline_len(&l.center_line))
            .fold(0.0, |a, b| a + b)
            / 1000.0,
        km2,
        secs,
        km2 / (secs / 60.0),
        a.out.display(),
        geojson.display()
    );
    if let Some(png) = &a.overlay {
        println!("overlay: {}", png.display());
    }
    Ok(())
}

fn polyline_len(p: &[hdmap_core::nalgebra::Point3<f64>]) -> f64 {
    p.windows(2).map(|w| (w[1].xy() - w[0].xy()).norm()).sum()
}

/// Arguments of `hdmap train layout`.
#[derive(clap::Args)]
pub struct TrainLayoutArgs {
    /// Training scene: a `hdmap sim` output directory (aerial/ortho.tif + aerial/paint_labels.tif).
    #[arg(long = "scene", required = true)]
    pub scenes: Vec<PathBuf>,
    /// Validation scene (same layout); IoU on it goes into the model card.
    #[arg(long = "val")]
    pub val: Vec<PathBuf>,
    /// Output weights (.safetensors); the model card (.toml) is written beside them.
    #[arg(long)]
    pub out: PathBuf,
    /// Training iterations.
    #[arg(long, default_value_t = 1500)]
    pub iterations: usize,
    /// Crops per iteration.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Crop size, px.
    #[arg(long, default_value_t = 192)]
    pub crop_px: usize,
    /// Channel multiplier of the U-Net.
    #[arg(long, default_value_t = 1)]
    pub width: i64,
    /// Seed of crop sampling, augmentation and initial weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn scene(dir: &Path) -> anyhow::Result<hdmap_layout::learned::Scene> {
    let s = hdmap_layout::learned::Scene {
        ortho: dir.join(hdmap_sim::files::ORTHO),
        labels: dir.join(hdmap_sim::files::PAINT_LABELS),
    };
    for p in [&s.ortho, &s.labels] {
        if !p.is_file() {
            anyhow::bail!("{}: missing (a scene is a `hdmap sim` output directory)", p.display());
        }
    }
    Ok(s)
}

/// Runs `hdmap train layout`.
pub fn train_layout(a: &TrainLayoutArgs) -> anyhow::Result<()> {
    if a.out.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        anyhow::bail!("--out {}: expected a .safetensors path", a.out.display());
    }
    let train: Vec<_> = a.scenes.iter().map(|d| scene(d)).collect::<Result<_, _>>()?;
    let val: Vec<_> = a.val.iter().map(|d| scene(d)).collect::<Result<_, _>>()?;
    let args: Vec<String> = std::env::args().collect();
    let cfg = hdmap_layout::learned::TrainConfig {
        iterations: a.iterations,
        batch: a.batch,
        crop_px: a.crop_px,
        width: a.width,
        learning_rate: 3e-3,
        seed: a.seed,
        trained_by: format!("hdmap {} {}", env!("CARGO_PKG_VERSION"), args[1..].join(" ")),
    };
    let start = std::time::Instant::now();
    let card = hdmap_layout::learned::train(&train, &val, &cfg, &a.out, |it, loss| {
        eprintln!(
            "iteration {it:5}/{}  loss {loss:.4}  ({:.0} s)",
            cfg.iterations,
            start.elapsed().as_secs_f64()
        );
    })?;
    println!(
        "trained {} iterations in {:.0} s; validation IoU white {:.3} yellow {:.3} → {}",
        card.iterations,
        start.elapsed().as_secs_f64(),
        card.val_iou[0],
        card.val_iou[1],
        a.out.display()
    );
    Ok(())
}
