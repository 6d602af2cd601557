//! `hdmap` — the command-line front end of the hdmap pipeline. Thin: argument parsing,
//! logging, progress bars; the work happens in the library crates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

mod calib_cmd;
mod clean_cmd;
mod export_cmd;
mod layout_cmd;
mod localize_cmd;
mod register_cmd;
mod run_cmd;
mod visual_cmd;
use indicatif::{ProgressBar, ProgressStyle};

/// A stage's settings: the TOML file given (errors name it) or the defaults.
pub(crate) fn read_config<T: serde::de::DeserializeOwned + Default>(
    path: Option<&std::path::Path>,
) -> anyhow::Result<T> {
    use anyhow::Context;
    let Some(p) = path else { return Ok(T::default()) };
    let text = std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?;
    toml::from_str(&text).with_context(|| format!("{}", p.display()))
}

/// hdmap: hybrid HD-map building from orthophotos and mobile-mapping drives.
#[derive(Parser)]
#[command(name = "hdmap", version, about, long_about = None)]
struct Cli {
    /// Log filter (also RUST_LOG), e.g. `info`, `hdmap_io=debug`.
    #[arg(long, global = true, default_value = "warn,tiny_skia=error")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a city with ground truth: road layout, orthophoto, DSM, MMS drive.
    Sim {
        /// Simulator config (configs/sim/*.toml).
        #[arg(long)]
        config: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Use this seed instead of the config's (a new city of the same design).
        #[arg(long)]
        seed: Option<u64>,
        /// Write only the aerial products (truth layout, orthophoto + paint labels, DSM), no drive.
        #[arg(long)]
        aerial_only: bool,
    },
    /// Render picture checks of a simulation output: orthophoto + layout, LiDAR top-downs.
    SimPreview {
        /// A `hdmap sim` output directory.
        dir: PathBuf,
        /// Where to write the PNGs.
        #[arg(long)]
        out: PathBuf,
    },
    /// Sensor calibration.
    #[command(subcommand)]
    Calibrate(CalibrateCommand),
    /// Extract the road layout (markings, lanes, topology, 3D) from an orthophoto.
    Layout(layout_cmd::LayoutArgs),
    /// Feature maps for localization.
    #[command(subcommand)]
    Features(FeaturesCommand),
    /// Localize a drive against an NDT map (scan to map, tracked from the GNSS/INS prior), or
    /// with --camera its camera images against the visual layer (PnP RANSAC, image by image);
    /// with --truth, errors against ground truth.
    Localize(localize_cmd::LocalizeArgs),
    /// Georeference a drive's scans and register them onto a road layout: corrected
    /// trajectory, covariances, aligned cloud, residual report.
    Register(register_cmd::RegisterArgs),
    /// Remove moving cars, people and cyclists from a registered cloud (free-space check over
    /// the whole drive, fused with the segmentation model when one is given): static.laz,
    /// removed.laz, reasons.u8, classes.u8, report.json.
    Clean(clean_cmd::CleanArgs),
    /// Label single scans with the segmentation model of `hdmap clean` (static, ground, car,
    /// truck, pedestrian, cyclist, other movable): per-point classes and top-down pictures.
    Segment(clean_cmd::SegmentArgs),
    /// Run the whole pipeline of a config into its job directory (stages whose inputs did not
    /// change are skipped; a killed run resumes).
    Run(run_cmd::RunArgs),
    /// Export the road layout (Lanelet2 OSM, GeoPackage, GeoJSON, OpenDRIVE, NGII shapefiles)
    /// and the point cloud (LAZ tiles) and write the Autoware map directory.
    Export(export_cmd::ExportArgs),
    /// Package a finished job as a dataset: layers, metadata, licence, previews, checksums.
    Publish(run_cmd::PublishArgs),
    /// Check a published dataset against its manifest.json.
    Verify {
        /// A folder written by `hdmap publish`.
        dir: PathBuf,
    },
    /// Train a model.
    #[command(subcommand)]
    Train(TrainCommand),
    /// Describe files: point clouds, rasters, vector layers, trajectories, images.
    Info {
        /// Files to describe.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print one JSON object per file instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CalibrateCommand {
    /// Camera intrinsics from a folder of chessboard photos.
    Intrinsics {
        /// Folder of board images (png/jpg).
        #[arg(long)]
        images: PathBuf,
        /// Inner corners per row × rows, e.g. 9x6.
        #[arg(long)]
        pattern: String,
        /// Square size, m (scales the extrinsics only).
        #[arg(long, default_value_t = 1.0)]
        square_m: f64,
        /// Lens model.
        #[arg(long, value_enum, default_value_t = ModelArg::Pinhole)]
        model: ModelArg,
        /// Print `{"model","fx","fy","cx","cy","dist":[...],"rms_px","views_used"}` only.
        #[arg(long)]
        json: bool,
    },
    /// Camera–LiDAR extrinsic from images and their scans: with --board from a chessboard in
    /// every image (writes a covariance), without on street scenes (LiDAR edges onto image
    /// edges); the rig's guess in, the updated rig out.
    CameraLidar(calib_cmd::CameraLidarArgs),
    /// LiDAR–INS extrinsic and LiDAR clock offset from a drive (scan matching + hand–eye); the
    /// rig's guess in, the updated rig (covariance, time offset) out.
    LidarIns(calib_cmd::LidarInsArgs),
}

#[derive(Subcommand)]
enum FeaturesCommand {
    /// The LiDAR localization layer: voxel normal distributions (NDT) of a static cloud,
    /// tiled PCD + metadata.json, in the layout's map frame.
    Ndt(localize_cmd::NdtArgs),
    /// The visual layer: FAST/BRIEF features of a drive's camera images matched under its
    /// poses, triangulated, written as kapture 1.1 (+ hdmap_visual.json), in the poses' map
    /// frame.
    Visual(visual_cmd::VisualArgs),
}

#[derive(Subcommand)]
enum TrainCommand {
    /// The paint segmentation U-Net of `hdmap layout` (on simulated orthophotos).
    Layout(layout_cmd::TrainLayoutArgs),
    /// The range-image segmentation model of `hdmap clean` (on simulated labelled scans).
    Dynamic(clean_cmd::TrainDynamicArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModelArg {
    Pinhole,
    Fisheye,
}

/// `COLSxROWS` inner corners of a chessboard, e.g. `9x6`.
fn parse_pattern(pattern: &str) -> anyhow::Result<(usize, usize)> {
    pattern
        .split_once(['x', 'X'])
        .and_then(|(a, b)| Some((a.trim().parse::<usize>().ok()?, b.trim().parse::<usize>().ok()?)))
        .filter(|(a, b)| *a >= 2 && *b >= 2)
        .ok_or_else(|| anyhow::anyhow!("`{pattern}`: expected COLSxROWS inner corners, e.g. 9x6"))
}

fn calibrate_intrinsics(
    images: &std::path::Path,
    pattern: &str,
    square_m: f64,
    model: ModelArg,
    json: bool,
) -> anyhow::Result<()> {
    let (cols, rows) = parse_pattern(pattern).context("--pattern")?;
    let model = match model {
        ModelArg::Pinhole => hdmap_calib::LensModel::Pinhole,
        ModelArg::Fisheye => hdmap_calib::LensModel::Fisheye,
    };
    let files = hdmap_calib::board_images(images)?;
    let (r, detections) = hdmap_calib::calibrate_images(&files, cols, rows, square_m, model)?;
    let i = r.intrinsics;
    let used = r.per_view_rms_px.len();
    if json {
        let lens = match i.distortion {
            hdmap_core::camera::Distortion::KannalaBrandt { .. } => "fisheye",
            _ => "pinhole",
        };
        let v = serde_json::json!({
            "model": lens,
            "fx": i.fx, "fy": i.fy, "cx": i.cx, "cy": i.cy,
            "dist": i.distortion.coefficients(),
            "rms_px": r.rms_px,
            "views_used": used,
        });
        println!("{v}");
        return Ok(());
    }
    for (p, b) in &detections {
        println!("{:40} {}", p.display(), if b.is_some() { "board found" } else { "no board" });
    }
    for (n, e) in &r.per_view_rms_px {
        println!("view {n:30} rms {e:.3} px");
    }
    for (n, e) in &r.rejected {
        println!("view {n:30} rejected (rms {e:.3} px)");
    }
    let s = &r.std_dev;
    println!(
        "fx {:.3} ± {:.3}  fy {:.3} ± {:.3}  cx {:.3} ± {:.3}  cy {:.3} ± {:.3} px",
        i.fx, s[0], i.fy, s[1], i.cx, s[2], i.cy, s[3]
    );
    println!("distortion {:?} ± {:?}", i.distortion.coefficients(), &s[4..]);
    println!("RMS reprojection error {:.4} px over {used} views", r.rms_px);
    Ok(())
}

fn progress_bar(label: &str) -> ProgressBar {
    // Hidden unless the work lasts more than a second.
    let pb = ProgressBar::hidden();
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(label.to_string());
    pb
}

fn info(files: &[PathBuf], json: bool) -> ExitCode {
    let mut failed = 0;
    for path in files {
        let pb = progress_bar(&path.display().to_string());
        let start = std::time::Instant::now();
        let result = hdmap_io::info::describe(path, |done, total| {
            if pb.is_hidden() && start.elapsed() > Duration::from_secs(1) {
                pb.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            pb.set_length(total);
            pb.set_position(done);
        });
        pb.finish_and_clear();
        match result {
            Ok(report) => {
                if json {
                    let mut v = serde_json::to_value(&report).unwrap_or_default();
                    if let Some(o) = v.as_object_mut() {
                        o.insert("path".into(), serde_json::Value::String(path.display().to_string()));
                    }
                    println!("{v}");
                } else {
                    println!("{}", path.display());
                    print!("{report}");
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

fn sim(
    config: &std::path::Path,
    out: &std::path::Path,
    seed: Option<u64>,
    aerial_only: bool,
) -> anyhow::Result<()> {
    let mut cfg = hdmap_sim::load_config(config)?;
    if let Some(seed) = seed {
        cfg.seed = seed;
    }
    if aerial_only {
        let start = std::time::Instant::now();
        let (km, (w, h)) = hdmap_sim::simulate_aerial(&cfg, out)?;
        println!(
            "simulated {km:.2} km of road, orthophoto {w}×{h} px with paint labels and DSM — {} in {:.1} s",
            out.display(),
            start.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let pb = ProgressBar::new(1);
    pb.set_style(
        ProgressStyle::with_template("{msg:12} [{bar:30}] {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let start = std::time::Instant::now();
    let summary = hdmap_sim::simulate(&cfg, out, |stage, done, total| {
        pb.set_message(stage.to_string());
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })?;
    pb.finish_and_clear();
    println!(
        "simulated {:.2} km of road ({} layout elements), orthophoto {}×{} px, drive {:.0} m in {:.1} s: {} scans, {} points, GNSS error up to {:.2} m — {} in {:.1} s",
        summary.road_km,
        summary.layout_elements,
        summary.ortho_px.0,
        summary.ortho_px.1,
        summary.drive_m,
        summary.drive_s,
        summary.scans,
        summary.points,
        summary.max_gnss_error_m,
        summary.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, leaving out a cause whose text the line already
/// carries (our library errors print their source themselves).
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if !line.contains(&c) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&c);
        }
    }
    line
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match cli.command {
        Command::Info { files, json } => info(&files, json),
        Command::SimPreview { dir, out } => match hdmap_sim::preview::write_previews(&dir, &out) {
            Ok(p) => {
                println!(
                    "{}\n{}\n{}",
                    p.ortho_layout.display(),
                    p.lidar_intensity.display(),
                    p.lidar_labels.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Calibrate(CalibrateCommand::Intrinsics { images, pattern, square_m, model, json }) => {
            report(calibrate_intrinsics(&images, &pattern, square_m, model, json))
        }
        Command::Calibrate(CalibrateCommand::CameraLidar(a)) => report(calib_cmd::camera_lidar(&a)),
        Command::Calibrate(CalibrateCommand::LidarIns(a)) => report(calib_cmd::lidar_ins(&a)),
        Command::Layout(a) => report(layout_cmd::layout(&a)),
        Command::Register(a) => report(register_cmd::register_drive(&a)),
        Command::Features(FeaturesCommand::Ndt(a)) => report(localize_cmd::features_ndt(&a)),
        Command::Features(FeaturesCommand::Visual(a)) => report(visual_cmd::features_visual(&a)),
        Command::Localize(a) => report(localize_cmd::localize(&a)),
        Command::Export(a) => report(export_cmd::export(&a)),
        Command::Run(a) => report(run_cmd::run(&a)),
        Command::Clean(a) => report(clean_cmd::clean(&a)),
        Command::Segment(a) => report(clean_cmd::segment(&a)),
        Command::Publish(a) => report(run_cmd::publish(&a)),
        Command::Verify { dir } => report(run_cmd::verify(&dir)),
        Command::Train(TrainCommand::Layout(a)) => report(layout_cmd::train_layout(&a)),
        Command::Train(TrainCommand::Dynamic(a)) => report(clean_cmd::train_dynamic(&a)),
        Command::Sim { config, out, seed, aerial_only } => report(sim(&config, &out, seed, aerial_only)),
    }
}
