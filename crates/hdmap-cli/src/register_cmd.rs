//! `hdmap register`.

use std::path::PathBuf;

use hdmap_register::drive::{Constraints, RegisterConfig};

/// Which constraints `hdmap register` uses.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ConstraintsArg {
    /// The INS poses as recorded (georeference and deskew only).
    Gnss,
    /// + scan matching between keyframes.
    Scan,
    /// + the layout's paint (the default).
    Layout,
}

/// Arguments of `hdmap register`.
#[derive(clap::Args)]
pub struct RegisterArgs {
    /// Drive directory: `lidar/*.pcd`, `ins.csv` and `rig.toml` (or `rig_nominal.toml`).
    #[arg(long, required_unless_present = "print_config")]
    pub drive: Option<PathBuf>,
    /// Road layout to anchor on (`hdmap layout` output: .gpkg or .geojson); its CRS is the
    /// CRS of the INS positions and of every output.
    #[arg(long, required_unless_present = "print_config")]
    pub layout: Option<PathBuf>,
    /// Output directory: trajectory.csv, covariance.csv, cloud.laz, report.json.
    #[arg(long, required_unless_present = "print_config")]
    pub out: Option<PathBuf>,
    /// Rig file instead of the drive's own.
    #[arg(long)]
    pub rig: Option<PathBuf>,
    /// Constraints of the adjustment.
    #[arg(long, value_enum, default_value_t = ConstraintsArg::Layout)]
    pub constraints: ConstraintsArg,
    /// Registration settings (TOML: the keys of `RegisterConfig`, tables `[georef]`, `[gicp]`,
    /// `[anchor]`; unknown keys are errors). `--print-config` shows them with their defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Print the effective settings as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// Runs `hdmap register`.
pub fn register_drive(a: &RegisterArgs) -> anyhow::Result<()> {
    let cfg: RegisterConfig = crate::read_config(a.config.as_deref())?;
    if let Some(p) = &a.config {
        cfg.validate().map_err(|m| anyhow::anyhow!("{}: {m}", p.display()))?;
    }
    if a.print_config {
        print!("{}", toml::to_string(&cfg)?);
        return Ok(());
    }
    let (Some(drive_dir), Some(layout_path), Some(out)) = (&a.drive, &a.layout, &a.out) else {
        anyhow::bail!("--drive, --layout and --out are required");
    };
    let layout = match layout_path.extension().and_then(|e| e.to_str()) {
        Some("gpkg") => hdmap_io::layout::read_layout_gpkg(layout_path)?,
        Some("geojson" | "json") => hdmap_io::layout::read_layout_geojson(layout_path)?,
        _ => anyhow::bail!("--layout {}: expected a .gpkg or .geojson road layout", layout_path.display()),
    };
    let start = std::time::Instant::now();
    let constraints = match a.constraints {
        ConstraintsArg::Gnss => Constraints::GnssOnly,
        ConstraintsArg::Scan => Constraints::ScanMatching,
        ConstraintsArg::Layout => Constraints::Layout,
    };
    let report =
        hdmap_register::output::register_drive(drive_dir, a.rig.as_deref(), &layout, constraints, &cfg, out)?;
    let fmt = |s: Option<hdmap_register::output::Spread>| {
        s.map(|s| format!("median {:.1}, p95 {:.1}, max {:.1}", s.median, s.p95, s.max)).unwrap_or("-".into())
    };
    println!(
        "{} keyframes, {} scan matches ({} between passes) in {:.1} s → {}",
        report.keyframes,
        report.consecutive_edges + report.overlap_edges,
        report.overlap_edges,
        start.elapsed().as_secs_f64(),
        out.display()
    );
    println!("correction to the INS, cm: {}", fmt(report.correction_xy_cm));
    println!("position sigma after adjustment, cm: {}", fmt(report.sigma_xy_cm));
    if let Some(p) = report.paint.as_ref().filter(|p| p.points == 0) {
        println!(
            "paint: no marking point within {} m of the layout's paint ({} associated)",
            cfg.paint_gates_m.last().copied().unwrap_or(0.0),
            p.points
        );
    }
    if let Some(p) = report.paint.as_ref().filter(|p| p.points > 0) {
        println!(
            "paint: {} marking points, {:.1} % on the layout's paint, p95 distance {:.1} cm",
            p.points,
            100.0 * p.on_paint_share,
            100.0 * p.p95_m
        );
    }
    println!("cloud: {} points", report.cloud_points);
    Ok(())
}
