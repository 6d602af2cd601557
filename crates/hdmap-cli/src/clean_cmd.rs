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
    /// Settings (the `[clean]` keys of a pipeline config, e.g. `[visibility] voxel_size_m`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Also write the scans in the KTH DynamicMap_Benchmark layout here (pcd/*.pcd with
    /// VIEWPOINT, relative to the first scan's origin; offset.txt), for DUFOMap and peers.
    #[arg(long)]
    pub benchmark_dump: Option<PathBuf>,
    /// Score the result against SemanticKITTI labels of the drive's scans (a `labels/` folder
    /// of `<scan>.label`, e.g. a simulated drive's): SA / DA / AA printed and written to
    /// `scores.json`; with --benchmark-dump, the truth per point goes to truth_dynamic.u8 there.
    #[arg(long)]
    pub truth_labels: Option<PathBuf>,
}

/// Runs `hdmap clean`.
pub fn clean(a: &CleanArgs) -> anyhow::Result<()> {
    let cfg: CleanConfig = crate::read_config(a.config.as_deref())?;
    let cloud_path = a.scans.join(hdmap_register::output::files::CLOUD);
    let traj_path = a.scans.join(hdmap_register::output::files::TRAJECTORY);
    let run = hdmap_dynamic::clean_files(&cloud_path, &traj_path, &a.out, &cfg)
        .with_context(|| a.config.as_ref().map(|p| p.display().to_string()).unwrap_or_default())?;
    let (cloud, reasons, r) = (&run.cloud, &run.reasons, &run.report);
    if let (Some(dir), Some(first)) = (&a.benchmark_dump, run.scans.first()) {
        let o = first.origin.map(f64::floor);
        let n = hdmap_dynamic::write_benchmark_scans(dir, &run.scans, o)?;
        println!("{n} scans in the DynamicMap_Benchmark layout → {}", dir.display());
    }
    if let Some(labels) = &a.truth_labels {
        let source_path = a.scans.join(hdmap_register::output::files::CLOUD_SOURCE);
        let source = std::fs::read(&source_path).with_context(|| format!("{}", source_path.display()))?;
        let report_path = a.scans.join(hdmap_register::output::files::REPORT);
        let report: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&report_path).with_context(|| format!("{}", report_path.display()))?,
        )?;
        let scan_files: Vec<String> = report["scan_files"]
            .as_array()
            .with_context(|| format!("{}: no scan_files", report_path.display()))?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let truth = hdmap_dynamic::metrics::truth_dynamic(labels, &scan_files, &source)?;
        if truth.len() != cloud.len() {
            anyhow::bail!(
                "{}: {} provenance records for {} points",
                source_path.display(),
                truth.len(),
                cloud.len()
            );
        }
        let removed: Vec<bool> = reasons.iter().map(|r| r.removed()).collect();
        let s = hdmap_dynamic::score(&removed, &truth);
        println!(
            "against {}: SA {:.2} % DA {:.2} % AA {:.2} % ({} static, {} dynamic points)",
            labels.display(),
            s.sa,
            s.da,
            s.aa,
            s.static_points,
            s.dynamic_points
        );
        hdmap_io::fsutil::write_bytes_atomic(
            &a.out.join("scores.json"),
            serde_json::to_string_pretty(&s)?.as_bytes(),
        )?;
        if let Some(dir) = &a.benchmark_dump {
            let bytes: Vec<u8> = truth.iter().map(|t| *t as u8).collect();
            hdmap_io::fsutil::write_bytes_atomic(&dir.join("truth_dynamic.u8"), &bytes)?;
        }
    }
    println!(
        "{} of {} points removed over {} scans ({:.1} ms per scan; {:?}) → {}",
        r.removed,
        r.points,
        r.scans,
        1e3 * run.seconds / run.scans.len().max(1) as f64,
        r.reasons,
        a.out.display()
    );
    Ok(())
}
