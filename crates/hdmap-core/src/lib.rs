//! # hdmap-core — the shared vocabulary of hdmap
//!
//! Every stage crate speaks in these types and nothing else crosses a crate boundary:
//!
//! * [`FrameId`] names a coordinate frame (vehicle, lidar, camera *n*, imu, gnss, world).
//! * Poses are `nalgebra::Isometry3<f64>` named `target_from_source`
//!   (`world_from_lidar * point_in_lidar = point_in_world`); timestamped poses are
//!   [`StampedPose`] (`stamp_ns: i64`) and sequences of them a [`Trajectory`].
//! * [`GeoOrigin`] and [`Crs`] say where world coordinates live. They are never defaulted:
//!   anything carrying world coordinates carries its CRS.
//! * [`PointCloud`] is the columnar point buffer for scans and maps.
//! * [`RoadLayout`] is the vector road model (lane boundaries, edges, stop lines, crosswalks,
//!   surface marks, lanes with topology).
//! * [`Rig`] holds the sensor extrinsics and clock offsets; [`SemanticClass`] numbers
//!   per-point classes as SemanticKITTI does.
//! * [`Issues`] collects non-fatal findings as data; [`CoreError`] is this crate's error.

pub mod camera;
pub mod cloud;
pub mod error;
pub mod frame;
pub mod geo;
pub mod issues;
pub mod layout;
#[cfg(feature = "pasture")]
pub mod pasture;
pub mod pose;
pub mod rig;
pub mod semantic;
pub mod time;

pub use camera::{CameraIntrinsics, Distortion};
pub use cloud::{CloudFrame, Column, ColumnValues, PointCloud, Positions, TimeBase};
pub use error::CoreError;
pub use frame::FrameId;
pub use geo::{Crs, GeoOrigin, VerticalDatum};
pub use issues::{Issue, Issues, Severity};
pub use layout::{
    ArrowKind, BoundaryRef, Crosswalk, DashPattern, EdgeKind, ElementId, Lane, LaneBoundary, LaneKind,
    LineType, MarkKind, MarkingColor, RoadCenterline, RoadEdge, RoadLayout, StopLine, SurfaceMark,
    boundary_paint, paint_polygons,
};
pub use nalgebra;
pub use pose::{StampedPose, Trajectory};
pub use rig::{Extrinsic, Rig};
pub use semantic::SemanticClass;
