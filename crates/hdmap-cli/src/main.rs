//! `hdmap` — the command-line front end of the hdmap pipeline. Thin: argument parsing,
//! logging, progress bars; the work happens in the library crates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// hdmap: hybrid HD-map building from orthophotos and mobile-mapping drives.
#[derive(Parser)]
#[command(name = "hdmap", version, about, long_about = None)]
struct Cli {
    /// Log filter (also RUST_LOG), e.g. `info`, `hdmap_io=debug`.
    #[arg(long, global = true, default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match cli.command {
        Command::Info { files, json } => info(&files, json),
    }
}
