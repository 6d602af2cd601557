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
    progress(Stage::Export, "done");
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
    Ok(())
}
