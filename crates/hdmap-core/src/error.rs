//! Errors of hdmap-core.

use thiserror::Error;

/// Errors raised by the core model when a value breaks one of its invariants.
#[derive(Debug, Error)]
pub enum CoreError {
    /// A point-cloud column does not have one entry (times its component count) per point.
    #[error("column `{name}` has {got} values but the cloud has {points} points × {components} components")]
    ColumnLength {
        /// Column name.
        name: String,
        /// Number of values found.
        got: usize,
        /// Number of points in the cloud.
        points: usize,
        /// Values per point.
        components: usize,
    },
    /// A coordinate is NaN or infinite.
    #[error("non-finite coordinate at point {index}")]
    NonFinite {
        /// Index of the first offending point.
        index: usize,
    },
    /// A value could not be parsed (frame name, datum name, ...).
    #[error("cannot parse {what} from `{text}`")]
    Parse {
        /// What was being parsed.
        what: &'static str,
        /// The offending text.
        text: String,
    },
    /// Two things that must share a CRS do not.
    #[error("CRS mismatch: {0} vs {1}")]
    CrsMismatch(String, String),
    /// A trajectory query outside its time span or on an empty trajectory.
    #[error("time {stamp_ns} ns is outside the trajectory span [{first_ns}, {last_ns}]")]
    OutsideTrajectory {
        /// Requested stamp.
        stamp_ns: i64,
        /// First stamp of the trajectory.
        first_ns: i64,
        /// Last stamp of the trajectory.
        last_ns: i64,
    },
    /// A trajectory has no poses or is not sorted by time.
    #[error("invalid trajectory: {0}")]
    Trajectory(String),
}
