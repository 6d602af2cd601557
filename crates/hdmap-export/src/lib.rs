//! hdmap-export: the map's layers in the formats their consumers already load.
//!
//! * [`lanelet2`]: the road layout as a Lanelet2 OSM map in the Autoware flavour (WGS84 nodes
//!   with `ele`, `local_x`, `local_y`; lanelets with boundary subtypes, stop lines and road
//!   markings as regulatory elements).
//! * [`projection`]: the map frame consumers project into (UTM around the map origin).
//!
//! Every writer is atomic (temporary file + rename) and takes the map origin explicitly.

pub mod lanelet2;
pub mod projection;

pub use lanelet2::{Flavour, Lanelet2Config, Lanelet2Summary, write_lanelet2};
pub use projection::MapProjection;

/// Errors of the exporters; each names the file or element concerned.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] hdmap_io::IoError),
    /// A model value is invalid (non-finite origin, …).
    #[error(transparent)]
    Core(#[from] hdmap_core::CoreError),
    /// The map origin or a coordinate cannot be projected.
    #[error("projection: {0}")]
    Projection(String),
    /// The layout cannot be written as asked (names the element).
    #[error("{0}")]
    Layout(String),
}
