//! The error type of hdmap-io: every variant names the file, and displays on one line.

use std::path::PathBuf;

use thiserror::Error;

/// Errors reading or writing a file. Every variant carries the path; `Display` is one line of
/// the form `<path>: <problem>`.
#[derive(Debug, Error)]
pub enum IoError {
    /// The file could not be opened, read, or written at the OS level.
    #[error("{}: {source}", path.display())]
    Os {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A directory was given where a file was expected.
    #[error("{}: is a directory, expected a file", path.display())]
    IsDirectory {
        /// The path.
        path: PathBuf,
    },
    /// The file is empty.
    #[error("{}: file is empty (0 bytes)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file ends before the data its header announces.
    #[error("{}: truncated: {detail}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was expected and what was found.
        detail: String,
    },
    /// The file's content does not follow its format.
    #[error("{}: invalid {format}: {detail}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// The format being read (`LAS`, `PCD`, `trajectory CSV`, ...).
        format: &'static str,
        /// What is wrong, with the line or record when known.
        detail: String,
    },
    /// The file is of a kind or variant hdmap does not read.
    #[error("{}: unsupported: {detail}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        detail: String,
    },
    /// A georeferenced input declares no coordinate reference system.
    #[error("{}: no CRS: {detail}", path.display())]
    MissingCrs {
        /// The file.
        path: PathBuf,
        /// What was expected.
        detail: String,
    },
    /// Error from the LAS/LAZ library.
    #[error("{}: LAS/LAZ: {}", path.display(), one_line(source))]
    Las {
        /// The file.
        path: PathBuf,
        /// The library error.
        #[source]
        source: las::Error,
    },
    /// Error from GDAL/OGR.
    #[error("{}: GDAL: {}", path.display(), gdal_message(source))]
    Gdal {
        /// The file.
        path: PathBuf,
        /// The library error.
        #[source]
        source: gdal::errors::GdalError,
    },
    /// Error from the image library.
    #[error("{}: image: {}", path.display(), one_line(source))]
    Image {
        /// The file.
        path: PathBuf,
        /// The library error.
        #[source]
        source: image::ImageError,
    },
    /// Data to be written (or just read) breaks a model invariant.
    #[error("{}: {source}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The violated invariant.
        #[source]
        source: hdmap_core::CoreError,
    },
}

/// GDAL's own message, without the wrapper's "CPL error class" boilerplate.
fn gdal_message(e: &gdal::errors::GdalError) -> String {
    match e {
        gdal::errors::GdalError::CplError { msg, .. } => one_line(msg),
        other => one_line(other),
    }
}

/// Collapses a library error message onto one line.
pub(crate) fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

impl IoError {
    /// The file the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            IoError::Os { path, .. }
            | IoError::IsDirectory { path }
            | IoError::Empty { path }
            | IoError::Truncated { path, .. }
            | IoError::Format { path, .. }
            | IoError::Unsupported { path, .. }
            | IoError::MissingCrs { path, .. }
            | IoError::Las { path, .. }
            | IoError::Gdal { path, .. }
            | IoError::Image { path, .. }
            | IoError::Invalid { path, .. } => path,
        }
    }
}
