//! `hdmap clean`: moving cars, people and cyclists out of a registered cloud.

use std::path::PathBuf;

use anyhow::Context;
use hdmap_dynamic::CleanConfig;

/// Arguments of `hdmap clean`.
#[derive(clap::Args)]
pub struct CleanArgs {
    /// A `hdmap register` output folder: cloud.laz (the scans' points, each scan's points
    /// consecutive with the scan's time) and trajectory.csv (one pose per scan).
    #[arg(long)]
    pub scans: PathBuf,
    /// Output folder: static.laz, removed.laz (classification = reason), report.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Settings (the `[clean]` keys of a pipeline config, e.g. `[visibility] voxel_size_m`,
    /// `[model] weights`, `[model] keep_parked`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The segmentation model (overrides `[model] weights`): safetensors from `hdmap train
    /// dynamic` or a TorchScript `.pt`, with its `.toml` card beside it.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The drive the register output came from (its `lidar/` holds the raw scans the model
    /// labels); needed with a model.
    #[arg(long)]
    pub drive: Option<PathBuf>,
    /// Also write the scans in the KTH DynamicMap_Benchmark layout here (pcd/*.pcd with
    /// VIEWPOINT, relative to the first scan's origin; offset.txt), for DUFOMap and peers.
    #[arg(long)]
    pub benchmark_dump: Option<PathBuf>,
    /// Score the result against SemanticKITTI labels of the drive's scans (a `labels/` folder
    /// of `<scan>.label`, e.g. a simulated drive's): SA / DA / AA of the free-space check (no
    /// model), or of the model alone and the fused decisions and the model's IoU per class
    /// (with a model), printed and written to `scores.json`; with --benchmark-dump, the moving
    /// truth per point goes to truth_dynamic.u8 there.
    #[arg(long)]
    pub truth_labels: Option<PathBuf>,
}

/// Runs `hdmap clean`.
pub fn clean(a: &CleanArgs) -> anyhow::Result<()> {
    let mut cfg: CleanConfig = crate::read_config(a.config.as_deref())?;
    // `[model] weights` in a config file is relative to that file (as in a pipeline config).
    if let (Some(w), Some(c)) = (&cfg.model.weights, &a.config)
        && w.is_relative()
    {
        cfg.model.weights = Some(c.parent().unwrap_or(std::path::Path::new(".")).join(w));
    }
    if let Some(m) = &a.model {
        cfg.model.weights = Some(m.clone());
    }
    let cloud_path = a.scans.join(hdmap_register::output::files::CLOUD);
    let traj_path = a.scans.join(hdmap_register::output::files::TRAJECTORY);
    let source_path = a.scans.join(hdmap_register::output::files::CLOUD_SOURCE);
    let needs_source = cfg.model.weights.is_some() || a.truth_labels.is_some();
    let (scan_files, provenance) = if needs_source {
        hdmap_register::output::read_provenance(&a.scans)?
    } else {
        (Vec::new(), Vec::new())
    };
    let lidar_dir = a.drive.as_ref().map(|d| d.join("lidar"));
    let source = lidar_dir.as_deref().map(|lidar_dir| hdmap_dynamic::ScanSource {
        lidar_dir,
        scan_files: &scan_files,
        provenance: &provenance,
    });
    let run = hdmap_dynamic::clean_files(&cloud_path, &traj_path, source.as_ref(), &a.out, &cfg)
        .with_context(|| a.config.as_ref().map(|p| p.display().to_string()).unwrap_or_default())?;
    let (cloud, r) = (&run.cloud, &run.report);
    if let (Some(dir), Some(first)) = (&a.benchmark_dump, run.scans.first()) {
        let o = first.origin.map(f64::floor);
        let n = hdmap_dynamic::write_benchmark_scans(dir, &run.scans, o)?;
        println!("{n} scans in the DynamicMap_Benchmark layout → {}", dir.display());
    }
    if let Some(labels) = &a.truth_labels {
        let truth_labels = hdmap_dynamic::metrics::truth_labels(labels, &scan_files, &provenance)?;
        if truth_labels.len() != cloud.len() {
            anyhow::bail!(
                "{}: {} provenance records for {} points",
                source_path.display(),
                truth_labels.len(),
                cloud.len()
            );
        }
        let scores = score_run(&run, &truth_labels, &cfg);
        for (name, s) in &scores.methods {
            println!(
                "{name:<10} against {} ({} truth): SA {:.2} % DA {:.2} % AA {:.2} % ({} static, {} dynamic points)",
                labels.display(),
                scores.truth,
                s.sa,
                s.da,
                s.aa,
                s.static_points,
                s.dynamic_points
            );
        }
        if let Some(iou) = &scores.class_iou {
            let line: Vec<String> = iou.iter().map(|(k, v)| format!("{k} {:.1}", 100.0 * v)).collect();
            println!("model IoU % per class: {}", line.join(", "));
        }
        hdmap_io::fsutil::write_bytes_atomic(
            &a.out.join("scores.json"),
            serde_json::to_string_pretty(&scores)?.as_bytes(),
        )?;
        if let Some(dir) = &a.benchmark_dump {
            // The benchmark's own truth: moving points.
            let truth = hdmap_dynamic::metrics::truth_removal(&truth_labels, false);
            let bytes: Vec<u8> = truth.iter().map(|t| *t as u8).collect();
            hdmap_io::fsutil::write_bytes_atomic(&dir.join("truth_dynamic.u8"), &bytes)?;
        }
    }
    let model = match &r.model {
        Some(m) => format!(
            "; model {:.1} ms per scan on {}",
            1e3 * run.model_seconds / run.scans.len().max(1) as f64,
            m.device
        ),
        None => String::new(),
    };
    println!(
        "{} of {} points removed over {} scans ({:.1} ms per scan{model}; {:?}) → {}",
        r.removed,
        r.points,
        r.scans,
        1e3 * run.seconds / run.scans.len().max(1) as f64,
        r.reasons,
        a.out.display()
    );
    Ok(())
}

/// `scores.json` of `hdmap clean --truth-labels`.
#[derive(serde::Serialize)]
pub struct RunScores {
    /// `moving` (the benchmark's truth: parked cars are static) or `movable` (every vehicle
    /// and person leaves the map: `keep_parked` off with a model).
    pub truth: &'static str,
    /// SA / DA / AA: without a model, of the free-space check (`visibility`); with one, of the
    /// model alone (`model`: every movable point removed) and of the final decisions (`fused`).
    /// (With a model the free-space check runs for the model's candidates only: run without
    /// `--model` for the check alone.)
    pub methods: Vec<(String, hdmap_dynamic::Scores)>,
    /// The model's point IoU per class over the cloud's points (with a model).
    pub class_iou: Option<Vec<(String, f64)>>,
}

/// Scores a clean run against per-point SemanticKITTI labels.
pub fn score_run(run: &hdmap_dynamic::CleanRun, labels: &[u32], cfg: &CleanConfig) -> RunScores {
    use hdmap_dynamic::model::{ClassIou, MovableClass};
    let include_parked = cfg.removes_parked();
    let truth = hdmap_dynamic::metrics::truth_removal(labels, include_parked);
    let removed = |rs: &[hdmap_dynamic::Reason]| rs.iter().map(|r| r.removed()).collect::<Vec<_>>();
    let mut methods = Vec::new();
    let mut class_iou = None;
    if run.classes.is_none() {
        methods.push(("visibility".to_string(), hdmap_dynamic::score(&removed(&run.visibility), &truth)));
    }
    if let Some(classes) = &run.classes {
        let model_removed: Vec<bool> = classes.iter().map(hdmap_dynamic::PointClass::is_movable).collect();
        methods.push(("model".to_string(), hdmap_dynamic::score(&model_removed, &truth)));
        methods.push(("fused".to_string(), hdmap_dynamic::score(&removed(&run.reasons), &truth)));
        let mut acc = ClassIou::default();
        let predicted: Vec<u8> = classes.iter().map(|c| c.class).collect();
        let t: Vec<Option<MovableClass>> = labels.iter().map(|l| MovableClass::of_label(*l)).collect();
        acc.add(&predicted, &t);
        class_iou =
            Some(MovableClass::ALL.iter().zip(acc.iou()).map(|(c, v)| (c.name().to_string(), v)).collect());
    }
    RunScores { truth: if include_parked { "movable" } else { "moving" }, methods, class_iou }
}

/// Arguments of `hdmap train dynamic`.
#[derive(clap::Args)]
pub struct TrainDynamicArgs {
    /// Training drive: a drive folder with `lidar/*.pcd` and `labels/*.label` (a `hdmap sim`
    /// output's `drive/`, or its output folder).
    #[arg(long = "drive", required = true)]
    pub drives: Vec<PathBuf>,
    /// Validation drive (same layout); per-class IoU on it goes into the model card.
    #[arg(long = "val")]
    pub val: Vec<PathBuf>,
    /// Use every n-th scan of each drive.
    #[arg(long, default_value_t = 1)]
    pub every: usize,
    /// Output weights (.safetensors); the model card (.toml) is written beside them.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the trained model as TorchScript here (.pt, card beside it).
    #[arg(long)]
    pub torchscript: Option<PathBuf>,
    /// Training iterations.
    #[arg(long, default_value_t = 1500)]
    pub iterations: usize,
    /// Crops per iteration.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Crop width, columns of the range image (a multiple of 8).
    #[arg(long, default_value_t = 256)]
    pub crop_cols: usize,
    /// Channel multiplier of the network.
    #[arg(long, default_value_t = 1)]
    pub width: i64,
    /// Range image rows (the training sensor's beams).
    #[arg(long, default_value_t = 32)]
    pub rows: usize,
    /// Range image columns over 360° (a multiple of 8).
    #[arg(long, default_value_t = 896)]
    pub cols: usize,
    /// Vertical field of view of the image, degrees: `DOWN,UP` (outer edges of the outer rows).
    #[arg(long, value_delimiter = ',', num_args = 2, default_values_t = [-25.645, 15.645])]
    pub fov_deg: Vec<f64>,
    /// Seed of sampling, augmentation and initial weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn drive_dir(d: &std::path::Path) -> PathBuf {
    if d.join("lidar").is_dir() { d.to_path_buf() } else { d.join("drive") }
}

/// Runs `hdmap train dynamic`.
pub fn train_dynamic(a: &TrainDynamicArgs) -> anyhow::Result<()> {
    use hdmap_dynamic::model;
    if a.out.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        anyhow::bail!("--out {}: expected a .safetensors path", a.out.display());
    }
    if let Some(ts) = &a.torchscript
        && model::card_path(ts) == model::card_path(&a.out)
    {
        anyhow::bail!(
            "--torchscript {}: its card would overwrite the weights' card; pick another name",
            ts.display()
        );
    }
    let args: Vec<String> = std::env::args().collect();
    let cfg = model::TrainConfig {
        iterations: a.iterations,
        batch: a.batch,
        crop_cols: a.crop_cols,
        width: a.width,
        learning_rate: 3e-3,
        seed: a.seed,
        projection: model::Projection {
            rows: a.rows,
            cols: a.cols,
            fov_up_deg: a.fov_deg[1],
            fov_down_deg: a.fov_deg[0],
        },
        min_range_m: 2.0,
        max_range_m: 80.0,
        trained_by: format!("hdmap {} {}", env!("CARGO_PKG_VERSION"), args[1..].join(" ")),
    };
    cfg.projection.validate().map_err(|m| anyhow::anyhow!("--rows/--cols/--fov-deg: {m}"))?;
    let read = |dirs: &[PathBuf]| -> anyhow::Result<Vec<model::LabelledScan>> {
        let mut v = Vec::new();
        for d in dirs {
            v.extend(model::read_labelled_drive(&drive_dir(d), a.every, cfg.min_range_m, cfg.max_range_m)?);
        }
        Ok(v)
    };
    let train = read(&a.drives)?;
    let val = read(&a.val)?;
    eprintln!("{} training scans, {} validation scans", train.len(), val.len());
    let start = std::time::Instant::now();
    let card = model::train(&train, &val, &cfg, &a.out, |it, loss| {
        eprintln!(
            "iteration {it:5}/{}  loss {loss:.4}  ({:.0} s)",
            cfg.iterations,
            start.elapsed().as_secs_f64()
        );
    })?;
    let iou: Vec<String> =
        card.classes.iter().zip(&card.val_iou).map(|(c, v)| format!("{c} {:.1}", 100.0 * v)).collect();
    println!(
        "trained {} iterations in {:.0} s; validation IoU % {} → {}",
        card.iterations,
        start.elapsed().as_secs_f64(),
        iou.join(", "),
        a.out.display()
    );
    if let Some(ts) = &a.torchscript {
        model::Model::load(&a.out)?.save_torchscript(ts)?;
        println!("TorchScript → {}", ts.display());
    }
    Ok(())
}

/// Arguments of `hdmap segment`.
#[derive(clap::Args)]
pub struct SegmentArgs {
    /// The segmentation model (safetensors from `hdmap train dynamic`, or TorchScript), with
    /// its `.toml` card beside it.
    #[arg(long)]
    pub model: PathBuf,
    /// Scans (PCD, KITTI .bin or LAS/LAZ, sensor frame), or folders of them.
    #[arg(required = true)]
    pub scans: Vec<PathBuf>,
    /// Output folder: per scan `<stem>.classes.u8` (one class code per point, in file order),
    /// `<stem>.png` (top-down, movable points in colour) and `segment.json`.
    #[arg(long)]
    pub out: PathBuf,
    /// Side of the top-down view around the sensor, m.
    #[arg(long, default_value_t = 80.0)]
    pub view_m: f64,
}

/// Colour of a class in the top-down views.
fn class_rgb(c: hdmap_dynamic::model::MovableClass) -> [u8; 3] {
    use hdmap_dynamic::model::MovableClass as M;
    match c {
        M::Static => [150, 150, 150],
        M::Ground => [70, 70, 70],
        M::Car => [230, 40, 40],
        M::Truck => [255, 140, 0],
        M::Pedestrian => [40, 200, 255],
        M::Cyclist => [200, 60, 255],
        M::OtherMovable => [255, 230, 0],
    }
}

/// Runs `hdmap segment`: the model on single scans, with a top-down picture of each.
pub fn segment(a: &SegmentArgs) -> anyhow::Result<()> {
    use hdmap_dynamic::model::{Model, MovableClass};
    let model = Model::load(&a.model)?;
    let mut files = Vec::new();
    for p in &a.scans {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| p.display().to_string())?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.extension()
                        .is_some_and(|x| ["pcd", "bin", "las", "laz"].contains(&&*x.to_string_lossy()))
                })
                .collect();
            v.sort();
            files.extend(v);
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        anyhow::bail!("no .pcd or .bin scans in {:?}", a.scans);
    }
    if !(a.view_m.is_finite() && a.view_m > 1.0 && a.view_m <= 2000.0) {
        anyhow::bail!("--view-m {}: must be a number in (1, 2000] m", a.view_m);
    }
    let mut stems = std::collections::BTreeSet::new();
    for f in &files {
        let stem = f.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        if !stems.insert(stem.clone()) {
            anyhow::bail!("{}: another scan has the name {stem}; its outputs would overwrite", f.display());
        }
    }
    std::fs::create_dir_all(&a.out).with_context(|| a.out.display().to_string())?;
    let mut summary = Vec::new();
    let start = std::time::Instant::now();
    for f in &files {
        let cloud = hdmap_io::scan::read_scan(f)?;
        if cloud.is_empty() {
            anyhow::bail!("{}: the scan has no points", f.display());
        }
        let pts: Vec<[f32; 3]> = (0..cloud.len())
            .map(|i| {
                let p = cloud.positions.get(i);
                [p[0] as f32, p[1] as f32, p[2] as f32]
            })
            .collect();
        let labels = model.label_scan(&pts)?;
        let stem = f.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
        hdmap_io::fsutil::write_bytes_atomic(&a.out.join(format!("{stem}.classes.u8")), &labels.class)?;
        // Top-down, 0.1 m per pixel, the sensor in the middle, x to the right, y up; movable
        // points drawn last so that they stay visible.
        let px = (a.view_m / 0.1).round() as u32;
        let mut img = image::RgbImage::from_pixel(px, px, image::Rgb([255, 255, 255]));
        let mut order: Vec<usize> = (0..pts.len()).collect();
        order.sort_by_key(|&i| match labels.class[i] {
            1 => 0, // ground first, then static, movable on top
            0 => 1,
            _ => 2,
        });
        for i in order {
            let p = pts[i];
            let u = ((p[0] as f64 + a.view_m / 2.0) / 0.1).floor();
            let v = ((a.view_m / 2.0 - p[1] as f64) / 0.1).floor();
            if u < 0.0 || v < 0.0 || u >= px as f64 || v >= px as f64 {
                continue;
            }
            let c = MovableClass::from_code(labels.class[i]).unwrap_or(MovableClass::Static);
            img.put_pixel(u as u32, v as u32, image::Rgb(class_rgb(c)));
        }
        hdmap_io::image::write_png(&a.out.join(format!("{stem}.png")), &image::DynamicImage::ImageRgb8(img))?;
        let counts: std::collections::BTreeMap<&str, usize> = MovableClass::ALL
            .iter()
            .map(|c| (c.name(), labels.class.iter().filter(|&&k| k == *c as u8).count()))
            .collect();
        println!("{}: {} points, {counts:?}", f.display(), pts.len());
        summary.push(
            serde_json::json!({ "scan": f.display().to_string(), "points": pts.len(), "classes": counts }),
        );
    }
    let secs = start.elapsed().as_secs_f64();
    let doc = serde_json::json!({
        "model": a.model.display().to_string(),
        "device": format!("{:?}", model.device()),
        "scans": summary,
        "seconds_per_scan": secs / files.len() as f64,
        "legend": MovableClass::ALL.iter().map(|c| (c.name(), class_rgb(*c))).collect::<std::collections::BTreeMap<_, _>>(),
    });
    hdmap_io::fsutil::write_bytes_atomic(
        &a.out.join("segment.json"),
        serde_json::to_string_pretty(&doc)?.as_bytes(),
    )?;
    println!(
        "{} scans in {:.2} s per scan (reading and drawing included) → {}",
        files.len(),
        secs / files.len() as f64,
        a.out.display()
    );
    Ok(())
}
