//! `hdmap run CONFIG`: the whole pipeline into a job directory, resuming where it stopped.

use std::path::PathBuf;
use std::time::Duration;

use hdmap_core::Issues;
use hdmap_pipeline::Stage;

/// Arguments of `hdmap run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Pipeline config (configs/demo.toml; every key in configs/reference.toml).
    pub config: PathBuf,
    /// Print the effective config (defaults filled in) as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// Runs `hdmap run`.
pub fn run(a: &RunArgs) -> anyhow::Result<()> {
    let cfg = hdmap_pipeline::load_config(&a.config)?;
    if a.print_config {
        print!("{}", toml::to_string(&cfg.config)?);
        return Ok(());
    }
    let mut bar: Option<indicatif::ProgressBar> = None;
    let mut progress = |stage: Stage, what: &str| {
        if let Some(b) = bar.take() {
            b.finish_and_clear();
        }
        if what == "running" {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            b.set_message(format!("{}: running", stage.name()));
            b.enable_steady_tick(Duration::from_millis(200));
            bar = Some(b);
        }
    };
    let mut issues = Issues::new();
    let reports = hdmap_pipeline::run(&cfg, &mut progress, &mut issues)?;
    progress(Stage::Report, "done");
    for r in &reports {
        if r.skipped {
            println!("{:9} up to date       {}", r.stage.name(), r.dir.display());
        } else {
            println!("{:9} ran in {:6.1} s  {} → {}", r.stage.name(), r.seconds, r.summary, r.dir.display());
        }
    }
    for i in issues.iter() {
        tracing::warn!("{i}");
    }
    println!("effective config: {}", cfg.job_dir().join("config.toml").display());
    println!(
        "report: {}",
        cfg.job_dir().join(hdmap_pipeline::report::REPORT_DIR).join("index.html").display()
    );
    Ok(())
}

/// Arguments of `hdmap publish`.
#[derive(clap::Args)]
pub struct PublishArgs {
    /// A job directory of `hdmap run` (its export stage finished).
    pub job: PathBuf,
    /// Where to write the dataset (must not exist).
    #[arg(long)]
    pub out: PathBuf,
    /// The licence text to ship as LICENSE.
    #[arg(long)]
    pub licence: PathBuf,
    /// The licence's SPDX id, e.g. CC-BY-4.0.
    #[arg(long)]
    pub licence_id: String,
    /// The dataset's name (default: the job folder's name).
    #[arg(long)]
    pub name: Option<String>,
}

/// Runs `hdmap publish`.
pub fn publish(a: &PublishArgs) -> anyhow::Result<()> {
    let opts = hdmap_pipeline::publish::PublishOptions {
        licence_file: a.licence.clone(),
        licence_id: a.licence_id.clone(),
        name: a.name.clone(),
    };
    let m = hdmap_pipeline::publish::publish(&a.job, &a.out, &opts)?;
    for (name, l) in &m.layers {
        if l.present {
            println!("{name}: {}", l.content);
        } else {
            println!("{name}: absent ({})", l.note);
        }
    }
    println!(
        "EPSG:{}, heights {}, coverage {:.3} km², licence {} → {}",
        m.epsg,
        m.vertical_datum,
        m.coverage_km2,
        m.licence,
        a.out.display()
    );
    Ok(())
}

/// Runs `hdmap verify`: exits with an error listing every problem.
pub fn verify(dir: &std::path::Path) -> anyhow::Result<()> {
    let problems = hdmap_pipeline::publish::verify(dir)?;
    if problems.is_empty() {
        println!("{}: every file matches manifest.json", dir.display());
        return Ok(());
    }
    for p in &problems {
        println!("{}: {p}", dir.display());
    }
    anyhow::bail!("{}: {} problems", dir.display(), problems.len())
}
