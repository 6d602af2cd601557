//! # hdmap-register — MMS scans georeferenced and registered onto the aerial layout
//!
//! The road half meets the sky half. [`georef`] deskews every scan with the INS trajectory and
//! the rig; [`gicp`] aligns scans and passes (Generalized-ICP on kd-trees, robust kernel,
//! parallel); [`anchor`] finds road paint in the scans and the layout's paint outlines;
//! [`graph`] and [`drive`] adjust the trajectory with INS priors, scan matches and paint
//! constraints; [`output`] writes the corrected trajectory, covariances, cloud and report.

pub mod anchor;
pub mod drive;
pub mod georef;
pub mod gicp;
pub mod graph;
pub mod output;
pub mod pair;

use thiserror::Error;

/// Settings check shared by the stage's configs: `v` must be a finite positive number.
pub(crate) fn positive(name: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 { Ok(()) } else { Err(format!("{name} = {v}: must be a positive number")) }
}

/// Errors of the registration stage.
#[derive(Debug, Error)]
pub enum RegisterError {
    /// Reading an input failed.
    #[error(transparent)]
    Io(#[from] hdmap_io::IoError),
    /// A pose or frame problem (time outside the trajectory, missing rig transform).
    #[error(transparent)]
    Core(#[from] hdmap_core::CoreError),
    /// An input cannot be used.
    #[error("{path}: {message}")]
    Input {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A cloud is too small to register.
    #[error("cloud has {have} points, registration needs at least {need}")]
    TooFewPoints {
        /// Points present.
        have: usize,
        /// Points needed.
        need: usize,
    },
    /// The least-squares solver failed.
    #[error("trajectory adjustment: {0}")]
    Solver(String),
    /// A coordinate is NaN or infinite.
    #[error("cloud has a non-finite coordinate")]
    NonFinite,
}
