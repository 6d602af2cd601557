//! The point cloud type for scans and maps.
//!
//! A columnar struct (structure of arrays): positions plus one `Option<Vec<_>>` per well-known
//! channel, label channels, and typed `extra` columns for whatever else a file carries (LAS
//! user data, colours, PCD fields we do not interpret). Columns keep the value *and type* of
//! the source where it matters for bit-exact round trips: every LAS and PCD field read is
//! written back unchanged. `crate::pasture` (feature `pasture`) converts to and from
//! pasture-core buffers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{CoreError, Crs, FrameId};

/// Point positions: absolute f64 world/sensor coordinates, or f32 offsets from a tile origin.
#[derive(Debug, Clone, PartialEq)]
pub enum Positions {
    /// Absolute coordinates (CRS units for world clouds, metres for sensor clouds).
    Absolute(Vec<[f64; 3]>),
    /// `tile_origin + offset` per point; keeps memory low for big maps (f32 is ~1 mm within
    /// 10 km of the tile origin).
    TileLocal {
        /// Origin of the tile in the cloud's frame.
        tile_origin: [f64; 3],
        /// Offsets from the tile origin.
        offsets: Vec<[f32; 3]>,
    },
}

impl Positions {
    /// Number of points.
    pub fn len(&self) -> usize {
        match self {
            Positions::Absolute(v) => v.len(),
            Positions::TileLocal { offsets, .. } => offsets.len(),
        }
    }

    /// True when there are no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Absolute position of point `i`.
    pub fn get(&self, i: usize) -> [f64; 3] {
        match self {
            Positions::Absolute(v) => v[i],
            Positions::TileLocal { tile_origin: o, offsets } => {
                let d = offsets[i];
                [o[0] + d[0] as f64, o[1] + d[1] as f64, o[2] + d[2] as f64]
            }
        }
    }

    /// Iterator over absolute positions.
    pub fn iter(&self) -> impl Iterator<Item = [f64; 3]> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

/// Which frame point coordinates are in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloudFrame {
    /// A sensor or vehicle frame (a raw scan), metres.
    Sensor(FrameId),
    /// World coordinates in a CRS.
    World(Crs),
    /// The file does not say. Stages that need world coordinates reject such clouds.
    Undeclared,
}

/// What per-point times count from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeBase {
    /// GPS seconds of the week (LAS global-encoding bit 0 clear).
    GpsWeekSeconds,
    /// Adjusted standard GPS time: GPS seconds since 1980-01-06 minus 1e9 (LAS bit 0 set).
    GpsAdjustedStandard,
    /// Seconds since the Unix epoch (most ROS drivers, e.g. the PJLab scans).
    Unix,
    /// Seconds relative to the start of the scan.
    ScanRelative,
    /// The file does not say.
    Unknown,
}

/// Values of a generic column, in their source type.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum ColumnValues {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F32(Vec<f32>),
    F64(Vec<f64>),
}

macro_rules! each_values {
    ($v:expr, $x:ident => $body:expr) => {
        match $v {
            ColumnValues::U8($x) => $body,
            ColumnValues::I8($x) => $body,
            ColumnValues::U16($x) => $body,
            ColumnValues::I16($x) => $body,
            ColumnValues::U32($x) => $body,
            ColumnValues::I32($x) => $body,
            ColumnValues::U64($x) => $body,
            ColumnValues::I64($x) => $body,
            ColumnValues::F32($x) => $body,
            ColumnValues::F64($x) => $body,
        }
    };
}

impl ColumnValues {
    /// Number of scalar values.
    pub fn len(&self) -> usize {
        each_values!(self, v => v.len())
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i` as f64 (exact for every type except 64-bit integers above 2^53).
    #[allow(clippy::unnecessary_cast)] // the macro casts every variant, f64 included
    pub fn get_f64(&self, i: usize) -> f64 {
        each_values!(self, v => v[i] as f64)
    }

    /// Size of one value in bytes.
    pub fn type_size(&self) -> usize {
        match self {
            ColumnValues::U8(_) | ColumnValues::I8(_) => 1,
            ColumnValues::U16(_) | ColumnValues::I16(_) => 2,
            ColumnValues::U32(_) | ColumnValues::I32(_) | ColumnValues::F32(_) => 4,
            ColumnValues::U64(_) | ColumnValues::I64(_) | ColumnValues::F64(_) => 8,
        }
    }

    /// Keeps only the values whose index satisfies `keep` (applied per point of `components`).
    fn gather_points(&self, components: usize, idx: &[usize]) -> Self {
        macro_rules! g {
            ($variant:ident, $v:expr) => {
                ColumnValues::$variant(
                    idx.iter()
                        .flat_map(|&i| $v[i * components..(i + 1) * components].iter().copied())
                        .collect(),
                )
            };
        }
        match self {
            ColumnValues::U8(v) => g!(U8, v),
            ColumnValues::I8(v) => g!(I8, v),
            ColumnValues::U16(v) => g!(U16, v),
            ColumnValues::I16(v) => g!(I16, v),
            ColumnValues::U32(v) => g!(U32, v),
            ColumnValues::I32(v) => g!(I32, v),
            ColumnValues::U64(v) => g!(U64, v),
            ColumnValues::I64(v) => g!(I64, v),
            ColumnValues::F32(v) => g!(F32, v),
            ColumnValues::F64(v) => g!(F64, v),
        }
    }
}

/// A generic per-point column: `components` values per point (PCD `COUNT`, RGB = 3, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Values per point (≥ 1).
    pub components: usize,
    /// The values, point-major (`[p0c0, p0c1, ..., p1c0, ...]`).
    pub values: ColumnValues,
}

impl Column {
    /// A one-component column.
    pub fn scalar(values: ColumnValues) -> Self {
        Self { components: 1, values }
    }
}

/// A point cloud: positions plus optional channels, all of the same length.
///
/// Invariant (checked by [`PointCloud::validate`], which every reader and writer calls): every
/// present channel has exactly one value per point (times its component count) and every
/// position is finite.
#[derive(Debug, Clone, PartialEq)]
pub struct PointCloud {
    /// The frame of `positions`.
    pub frame: CloudFrame,
    /// Point positions.
    pub positions: Positions,
    /// Return strength. f32 holds LAS u16 and PCD u8/u16/f32 intensities exactly.
    pub intensity: Option<Vec<f32>>,
    /// Per-point acquisition time in seconds since `time_base`'s epoch.
    pub time_s: Option<Vec<f64>>,
    /// What `time_s` counts from.
    pub time_base: TimeBase,
    /// Laser ring / beam index.
    pub ring: Option<Vec<u16>>,
    /// Return number (1-based, LAS convention).
    pub return_number: Option<Vec<u8>>,
    /// Number of returns of the pulse.
    pub number_of_returns: Option<Vec<u8>>,
    /// ASPRS classification code.
    pub classification: Option<Vec<u8>>,
    /// Index of the scan (sweep) a point came from, in accumulated maps.
    pub scan_id: Option<Vec<u32>>,
    /// Label channels by name (`class`, `instance`, `dynamic`, ...).
    pub labels: BTreeMap<String, Vec<u32>>,
    /// Any other per-point data, with its source type (`user_data`, `red`, PCD extras, ...).
    pub extra: BTreeMap<String, Column>,
}

impl PointCloud {
    /// A cloud with absolute positions and no channels.
    pub fn from_positions(frame: CloudFrame, positions: Vec<[f64; 3]>) -> Self {
        Self {
            frame,
            positions: Positions::Absolute(positions),
            intensity: None,
            time_s: None,
            time_base: TimeBase::Unknown,
            ring: None,
            return_number: None,
            number_of_returns: None,
            classification: None,
            scan_id: None,
            labels: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// True when the cloud has no points.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Checks the length invariant and that positions are finite.
    pub fn validate(&self) -> Result<(), CoreError> {
        let n = self.len();
        let check = |name: &str, got: usize, components: usize| {
            if got != n * components {
                Err(CoreError::ColumnLength { name: name.to_string(), got, points: n, components })
            } else {
                Ok(())
            }
        };
        if let Some(v) = &self.intensity {
            check("intensity", v.len(), 1)?;
        }
        if let Some(v) = &self.time_s {
            check("time_s", v.len(), 1)?;
        }
        if let Some(v) = &self.ring {
            check("ring", v.len(), 1)?;
        }
        if let Some(v) = &self.return_number {
            check("return_number", v.len(), 1)?;
        }
        if let Some(v) = &self.number_of_returns {
            check("number_of_returns", v.len(), 1)?;
        }
        if let Some(v) = &self.classification {
            check("classification", v.len(), 1)?;
        }
        if let Some(v) = &self.scan_id {
            check("scan_id", v.len(), 1)?;
        }
        for (name, v) in &self.labels {
            check(name, v.len(), 1)?;
        }
        for (name, c) in &self.extra {
            if c.components == 0 {
                return Err(CoreError::ColumnLength {
                    name: name.clone(),
                    got: c.values.len(),
                    points: n,
                    components: 0,
                });
            }
            check(name, c.values.len(), c.components)?;
        }
        match &self.positions {
            Positions::Absolute(v) => {
                if let Some(i) = v.iter().position(|p| !p.iter().all(|c| c.is_finite())) {
                    return Err(CoreError::NonFinite { index: i });
                }
            }
            Positions::TileLocal { tile_origin, offsets } => {
                if !tile_origin.iter().all(|c| c.is_finite()) {
                    return Err(CoreError::NonFinite { index: 0 });
                }
                if let Some(i) = offsets.iter().position(|p| !p.iter().all(|c| c.is_finite())) {
                    return Err(CoreError::NonFinite { index: i });
                }
            }
        }
        Ok(())
    }

    /// Axis-aligned bounds `(min, max)`, `None` when empty.
    pub fn bounds(&self) -> Option<([f64; 3], [f64; 3])> {
        let mut it = self.positions.iter();
        let first = it.next()?;
        Some(it.fold((first, first), |(mut lo, mut hi), p| {
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k]);
            }
            (lo, hi)
        }))
    }

    /// Converts positions to f32 offsets from `tile_origin`.
    pub fn to_tile_local(&mut self, tile_origin: [f64; 3]) {
        let offsets = self
            .positions
            .iter()
            .map(|p| {
                [
                    (p[0] - tile_origin[0]) as f32,
                    (p[1] - tile_origin[1]) as f32,
                    (p[2] - tile_origin[2]) as f32,
                ]
            })
            .collect();
        self.positions = Positions::TileLocal { tile_origin, offsets };
    }

    /// Converts positions to absolute f64.
    pub fn to_absolute(&mut self) {
        if let Positions::TileLocal { .. } = self.positions {
            self.positions = Positions::Absolute(self.positions.iter().collect());
        }
    }

    /// Keeps the points whose flag in `keep` is true (one flag per point), in every channel.
    pub fn retain(&mut self, keep: &[bool]) -> Result<(), CoreError> {
        if keep.len() != self.len() {
            return Err(CoreError::ColumnLength {
                name: "keep mask".into(),
                got: keep.len(),
                points: self.len(),
                components: 1,
            });
        }
        let idx: Vec<usize> = keep.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i).collect();
        *self = self.select(&idx);
        Ok(())
    }

    /// A new cloud of the points at `idx` (in that order), every channel carried along.
    ///
    /// # Panics
    /// When an index is out of range (a bug in the caller).
    pub fn select(&self, idx: &[usize]) -> PointCloud {
        fn pick<T: Copy>(v: &[T], idx: &[usize]) -> Vec<T> {
            idx.iter().map(|&i| v[i]).collect()
        }
        let positions = match &self.positions {
            Positions::Absolute(v) => Positions::Absolute(pick(v, idx)),
            Positions::TileLocal { tile_origin, offsets } => {
                Positions::TileLocal { tile_origin: *tile_origin, offsets: pick(offsets, idx) }
            }
        };
        PointCloud {
            frame: self.frame.clone(),
            positions,
            intensity: self.intensity.as_deref().map(|v| pick(v, idx)),
            time_s: self.time_s.as_deref().map(|v| pick(v, idx)),
            time_base: self.time_base,
            ring: self.ring.as_deref().map(|v| pick(v, idx)),
            return_number: self.return_number.as_deref().map(|v| pick(v, idx)),
            number_of_returns: self.number_of_returns.as_deref().map(|v| pick(v, idx)),
            classification: self.classification.as_deref().map(|v| pick(v, idx)),
            scan_id: self.scan_id.as_deref().map(|v| pick(v, idx)),
            labels: self.labels.iter().map(|(k, v)| (k.clone(), pick(v, idx))).collect(),
            extra: self
                .extra
                .iter()
                .map(|(k, c)| {
                    (
                        k.clone(),
                        Column {
                            components: c.components,
                            values: c.values.gather_points(c.components, idx),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Names of the channels present, positions first, in a stable order (for reports).
    pub fn channel_names(&self) -> Vec<String> {
        let mut names = vec!["x".to_string(), "y".into(), "z".into()];
        let opt = [
            ("intensity", self.intensity.is_some()),
            ("time", self.time_s.is_some()),
            ("ring", self.ring.is_some()),
            ("return_number", self.return_number.is_some()),
            ("number_of_returns", self.number_of_returns.is_some()),
            ("classification", self.classification.is_some()),
            ("scan_id", self.scan_id.is_some()),
        ];
        names.extend(opt.iter().filter(|(_, p)| *p).map(|(n, _)| n.to_string()));
        names.extend(self.labels.keys().map(|k| format!("label:{k}")));
        names.extend(self.extra.keys().cloned());
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PointCloud {
        let mut c = PointCloud::from_positions(
            CloudFrame::Sensor(FrameId::Lidar(0)),
            vec![[1.0, 2.0, 3.0], [-4.0, 5.5, 0.25], [100.0, -100.0, 7.0]],
        );
        c.intensity = Some(vec![1.0, 2.0, 3.0]);
        c.labels.insert("class".into(), vec![7, 8, 9]);
        c.extra.insert("rgb".into(), Column { components: 3, values: ColumnValues::U16((0..9).collect()) });
        c
    }

    #[test]
    fn validate_catches_length_mismatch_and_nan() {
        let mut c = sample();
        assert!(c.validate().is_ok());
        c.ring = Some(vec![0, 1]);
        assert!(matches!(c.validate(), Err(CoreError::ColumnLength { .. })));
        let mut c = sample();
        if let Positions::Absolute(v) = &mut c.positions {
            v[1][2] = f64::NAN;
        }
        assert!(matches!(c.validate(), Err(CoreError::NonFinite { index: 1 })));
    }

    #[test]
    fn retain_filters_every_channel_consistently() -> Result<(), CoreError> {
        let mut c = sample();
        c.retain(&[true, false, true])?;
        c.validate()?;
        assert_eq!(c.positions.get(1), [100.0, -100.0, 7.0]);
        assert_eq!(c.intensity.as_deref(), Some(&[1.0, 3.0][..]));
        assert_eq!(c.labels["class"], vec![7, 9]);
        assert_eq!(c.extra["rgb"].values, ColumnValues::U16(vec![0, 1, 2, 6, 7, 8]));
        Ok(())
    }

    #[test]
    fn tile_local_round_trip_within_a_millimetre() {
        let mut c = sample();
        let before: Vec<_> = c.positions.iter().collect();
        c.to_tile_local([50.0, 50.0, 0.0]);
        c.to_absolute();
        for (a, b) in before.iter().zip(c.positions.iter()) {
            for k in 0..3 {
                assert!((a[k] - b[k]).abs() < 1e-3);
            }
        }
        assert_eq!(c.bounds(), Some(([-4.0, -100.0, 0.25], [100.0, 5.5, 7.0])));
    }
}
