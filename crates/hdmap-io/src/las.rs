//! LAS / LAZ 1.2–1.4 (all point formats 0–10, COPC read as LAZ) through the `las` crate.
//!
//! Reading yields a [`PointCloud`] plus [`LasHeaderInfo`]. Well-known fields map to the
//! cloud's typed channels (intensity, gps time, return numbers, classification); every other
//! LAS field is kept as an `extra` column named as laspy names it (`user_data`,
//! `point_source_id`, `scan_angle_deg`, `red`, ...), so that [`write_las`] with
//! [`LasWriteOptions::like`] writes every field back bit-exactly.
//!
//! The `las` crate handles headers, VLRs and LAZ (de)compression (in parallel); point records
//! are encoded and decoded here, column by column, straight from and to the on-disk layout.
//!
//! CRS: the OGC WKT VLR (LASF_Projection 2112) wins, then GeoTIFF keys with an EPSG code, then
//! a libLAS WKT VLR; codes are identified through GDAL/PROJ.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use hdmap_core::{CloudFrame, Column, ColumnValues, Crs, PointCloud, TimeBase};
use las::point::Format;
use las::{Builder, GpsTimeType, Reader, Transform, Vector, Version, Vlr};
use rayon::prelude::*;
use serde::Serialize;

use crate::IoError;

/// Scale of the i16 scan angle of point formats 6–10, degrees per step.
const SCAN_ANGLE_STEP_DEG: f32 = 0.006;
use crate::crs::{crs_from_epsg, crs_from_wkt, wkt_for_epsg};
use crate::fsutil::{check_input_file, write_atomic_via_path};

/// Names of the `extra` columns the LAS reader fills and the writer understands.
pub mod field {
    /// Scan direction flag (0/1).
    pub const SCAN_DIRECTION: &str = "scan_direction_flag";
    /// Edge of flight line flag (0/1).
    pub const EDGE_OF_FLIGHT_LINE: &str = "edge_of_flight_line";
    /// Synthetic flag (0/1).
    pub const SYNTHETIC: &str = "synthetic";
    /// Key-point flag (0/1).
    pub const KEY_POINT: &str = "key_point";
    /// Withheld flag (0/1).
    pub const WITHHELD: &str = "withheld";
    /// Overlap flag (0/1); class 12 in formats 0–5.
    pub const OVERLAP: &str = "overlap";
    /// Scanner channel (formats 6–10).
    pub const SCANNER_CHANNEL: &str = "scanner_channel";
    /// Scan angle in degrees (f32).
    pub const SCAN_ANGLE_DEG: &str = "scan_angle_deg";
    /// User data byte.
    pub const USER_DATA: &str = "user_data";
    /// Point source id.
    pub const POINT_SOURCE_ID: &str = "point_source_id";
    /// Red (u16).
    pub const RED: &str = "red";
    /// Green (u16).
    pub const GREEN: &str = "green";
    /// Blue (u16).
    pub const BLUE: &str = "blue";
    /// Near infrared (u16).
    pub const NIR: &str = "nir";
    /// Wave packet descriptor index.
    pub const WAVEPACKET_INDEX: &str = "wavepacket_index";
    /// Byte offset to waveform data.
    pub const WAVEPACKET_OFFSET: &str = "wavepacket_offset";
    /// Waveform packet size in bytes.
    pub const WAVEPACKET_SIZE: &str = "wavepacket_size";
    /// Return point waveform location.
    pub const RETURN_POINT_WAVE_LOCATION: &str = "return_point_wave_location";
    /// Waveform x(t).
    pub const X_T: &str = "x_t";
    /// Waveform y(t).
    pub const Y_T: &str = "y_t";
    /// Waveform z(t).
    pub const Z_T: &str = "z_t";
    /// Raw extra bytes (u8, one component per byte).
    pub const EXTRA_BYTES: &str = "extra_bytes";
}

/// A VLR as listed in reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VlrSummary {
    /// User id.
    pub user_id: String,
    /// Record id.
    pub record_id: u16,
    /// Description.
    pub description: String,
    /// Payload size in bytes.
    pub bytes: usize,
    /// True for an extended VLR.
    pub extended: bool,
}

/// What a LAS header says, for reports and for writing a file like it.
#[derive(Debug, Clone, Serialize)]
pub struct LasHeaderInfo {
    /// LAS version, e.g. `(1, 4)`.
    pub version: (u8, u8),
    /// Point data format id (0–10).
    pub point_format: u8,
    /// LAZ compressed.
    pub compressed: bool,
    /// Has a COPC info VLR.
    pub copc: bool,
    /// Point count from the header.
    pub point_count: u64,
    /// Scale of x, y, z.
    pub scale: [f64; 3],
    /// Offset of x, y, z.
    pub offset: [f64; 3],
    /// Bounds from the header: min.
    pub bounds_min: [f64; 3],
    /// Bounds from the header: max.
    pub bounds_max: [f64; 3],
    /// GPS time type from the global encoding.
    pub time_base: TimeBase,
    /// Number of extra bytes per point.
    pub extra_bytes: u16,
    /// System identifier.
    pub system_identifier: String,
    /// Generating software.
    pub generating_software: String,
    /// File source id.
    pub file_source_id: u16,
    /// CRS, if the file declares one.
    pub crs: Option<Crs>,
    /// Which record the CRS came from.
    pub crs_source: Option<String>,
    /// All VLRs and EVLRs.
    pub vlrs: Vec<VlrSummary>,
    #[serde(skip)]
    raw_vlrs: Vec<Vlr>,
    #[serde(skip)]
    raw_evlrs: Vec<Vlr>,
    #[serde(skip)]
    has_wkt_crs_bit: bool,
    #[serde(skip)]
    guid: uuid::Uuid,
}

/// A LAS/LAZ file read into memory.
#[derive(Debug, Clone)]
pub struct LasFile {
    /// The points.
    pub cloud: PointCloud,
    /// The header.
    pub header: LasHeaderInfo,
}

fn las_err(path: &Path) -> impl Fn(las::Error) -> IoError + '_ {
    move |source| {
        // Walk the error chain: a short read anywhere (LAS records, LAZ chunks) is truncation.
        let mut e: Option<&(dyn std::error::Error + 'static)> = Some(&source);
        let mut eof = false;
        while let Some(err) = e {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                eof |= io.kind() == std::io::ErrorKind::UnexpectedEof;
            }
            eof |= err.to_string().contains("failed to fill whole buffer");
            e = err.source();
        }
        if eof {
            IoError::Truncated {
                path: path.to_path_buf(),
                detail: "file ends before the data its header announces".into(),
            }
        } else {
            IoError::Las { path: path.to_path_buf(), source }
        }
    }
}

/// For uncompressed LAS, checks that the file is long enough for every announced point
/// record, so truncation is reported with numbers before any point is decoded.
fn check_las_length(path: &Path, file_len: u64) -> Result<(), IoError> {
    let mut f = File::open(path).map_err(|source| IoError::Os { path: path.to_path_buf(), source })?;
    let raw = las::raw::Header::read_from(&mut f).map_err(las_err(path))?;
    if raw.point_data_record_format & 0xC0 != 0 {
        return Ok(()); // LAZ: sizes are only known chunk by chunk
    }
    let n = raw
        .large_file
        .map(|l| l.number_of_point_records)
        .filter(|n| *n > 0)
        .unwrap_or(raw.number_of_point_records as u64);
    let need = raw.offset_to_point_data as u64 + n * raw.point_data_record_length as u64;
    if file_len < need {
        let have = file_len.saturating_sub(raw.offset_to_point_data as u64)
            / raw.point_data_record_length.max(1) as u64;
        return Err(IoError::Truncated {
            path: path.to_path_buf(),
            detail: format!(
                "header announces {n} points ({need} bytes), file has {file_len} bytes ({have} whole points)"
            ),
        });
    }
    Ok(())
}

fn resolve_crs(header: &las::Header) -> (Option<Crs>, Option<String>) {
    let vlrs: Vec<&Vlr> = header.all_vlrs().collect();
    if let Some(v) =
        vlrs.iter().find(|v| v.user_id.trim_end_matches('\0') == "LASF_Projection" && v.record_id == 2112)
        && let Some(c) = crs_from_wkt(&String::from_utf8_lossy(&v.data))
    {
        return (Some(c), Some("OGC WKT VLR (LASF_Projection 2112)".into()));
    }
    if let Ok(Some(geotiff)) = header.get_geotiff_crs() {
        let key = |id: u16| {
            geotiff.entries.iter().find(|e| e.id == id).and_then(|e| match &e.data {
                las::crs::GeoTiffData::U16(v) => Some(*v as u32),
                _ => None,
            })
        };
        for id in [3072u16, 2048] {
            if let Some(code) = key(id).filter(|c| *c != 0 && *c != 32767) {
                return (Some(crs_from_epsg(code)), Some(format!("GeoTIFF keys (key {id})")));
            }
        }
    }
    if let Some(v) = vlrs.iter().find(|v| v.user_id.trim_end_matches('\0') == "liblas" && v.record_id == 2112)
        && let Some(c) = crs_from_wkt(&String::from_utf8_lossy(&v.data))
    {
        return (Some(c), Some("libLAS WKT VLR (liblas 2112)".into()));
    }
    if header.has_crs_vlrs() {
        return (None, Some("user-defined GeoTIFF keys that GDAL cannot resolve".into()));
    }
    (None, None)
}

/// Reads only the header of a LAS/LAZ file.
pub fn read_las_header(path: &Path) -> Result<LasHeaderInfo, IoError> {
    check_input_file(path)?;
    let file = File::open(path).map_err(|source| IoError::Os { path: path.to_path_buf(), source })?;
    let reader = Reader::new(BufReader::new(file)).map_err(las_err(path))?;
    Ok(header_info(reader.header()))
}

fn header_info(h: &las::Header) -> LasHeaderInfo {
    let t = h.transforms();
    let b = h.bounds();
    let (crs, crs_source) = resolve_crs(h);
    let mut vlrs: Vec<VlrSummary> = h
        .vlrs()
        .iter()
        .map(|v| VlrSummary {
            user_id: v.user_id.trim_end_matches('\0').to_string(),
            record_id: v.record_id,
            description: v.description.trim_end_matches('\0').to_string(),
            bytes: v.data.len(),
            extended: false,
        })
        .collect();
    vlrs.extend(h.evlrs().iter().map(|v| VlrSummary {
        user_id: v.user_id.trim_end_matches('\0').to_string(),
        record_id: v.record_id,
        description: v.description.trim_end_matches('\0').to_string(),
        bytes: v.data.len(),
        extended: true,
    }));
    let format = h.point_format();
    LasHeaderInfo {
        version: (h.version().major, h.version().minor),
        point_format: format.to_u8().unwrap_or(255),
        compressed: format.is_compressed,
        copc: vlrs.iter().any(|v| v.user_id == "copc" && v.record_id == 1),
        point_count: h.number_of_points(),
        scale: [t.x.scale, t.y.scale, t.z.scale],
        offset: [t.x.offset, t.y.offset, t.z.offset],
        bounds_min: [b.min.x, b.min.y, b.min.z],
        bounds_max: [b.max.x, b.max.y, b.max.z],
        time_base: match h.gps_time_type() {
            GpsTimeType::Week => TimeBase::GpsWeekSeconds,
            GpsTimeType::Standard => TimeBase::GpsAdjustedStandard,
        },
        extra_bytes: format.extra_bytes,
        system_identifier: h.system_identifier().to_string(),
        generating_software: h.generating_software().to_string(),
        file_source_id: h.file_source_id(),
        crs,
        crs_source,
        vlrs,
        raw_vlrs: h.vlrs().clone(),
        raw_evlrs: h.evlrs().clone(),
        has_wkt_crs_bit: h.has_wkt_crs(),
        guid: h.guid(),
    }
}

/// Byte layout of one point record of a LAS point format (LAS 1.4 R15, tables 7–17).
#[derive(Debug, Clone, Copy)]
struct RecordLayout {
    /// Formats 6–10.
    extended: bool,
    time_at: Option<usize>,
    rgb_at: Option<usize>,
    nir_at: Option<usize>,
    wave_at: Option<usize>,
    /// Where the extra bytes start.
    extra_at: usize,
    /// Record length including extra bytes.
    len: usize,
}

impl RecordLayout {
    fn of(id: u8, extra_bytes: u16) -> Option<Self> {
        let (extended, time_at, rgb_at, nir_at, wave_at, core) = match id {
            0 => (false, None, None, None, None, 20),
            1 => (false, Some(20), None, None, None, 28),
            2 => (false, None, Some(20), None, None, 26),
            3 => (false, Some(20), Some(28), None, None, 34),
            4 => (false, Some(20), None, None, Some(28), 57),
            5 => (false, Some(20), Some(28), None, Some(34), 63),
            6 => (true, Some(22), None, None, None, 30),
            7 => (true, Some(22), Some(30), None, None, 36),
            8 => (true, Some(22), Some(30), Some(36), None, 38),
            9 => (true, Some(22), None, None, Some(30), 59),
            10 => (true, Some(22), Some(30), Some(36), Some(38), 67),
            _ => return None,
        };
        Some(Self {
            extended,
            time_at,
            rgb_at,
            nir_at,
            wave_at,
            extra_at: core,
            len: core + extra_bytes as usize,
        })
    }
}

/// Growable columns for one read.
struct LasColumns {
    xyz: Vec<[f64; 3]>,
    intensity: Vec<f32>,
    return_number: Vec<u8>,
    number_of_returns: Vec<u8>,
    classification: Vec<u8>,
    time: Vec<f64>,
    flags: [Vec<u8>; 6],
    scanner_channel: Vec<u8>,
    scan_angle: Vec<f32>,
    user_data: Vec<u8>,
    point_source_id: Vec<u16>,
    rgb: [Vec<u16>; 3],
    nir: Vec<u16>,
    wave_index: Vec<u8>,
    wave_offset: Vec<u64>,
    wave_size: Vec<u32>,
    wave_loc: Vec<f32>,
    wave_xyz: [Vec<f32>; 3],
    extra_bytes: Vec<u8>,
}

impl LasColumns {
    fn with_capacity(n: usize, format: &Format) -> Self {
        let v = |on: bool| if on { n } else { 0 };
        Self {
            xyz: Vec::with_capacity(n),
            intensity: Vec::with_capacity(n),
            return_number: Vec::with_capacity(n),
            number_of_returns: Vec::with_capacity(n),
            classification: Vec::with_capacity(n),
            time: Vec::with_capacity(v(format.has_gps_time)),
            flags: std::array::from_fn(|_| Vec::with_capacity(n)),
            scanner_channel: Vec::with_capacity(v(format.is_extended)),
            scan_angle: Vec::with_capacity(n),
            user_data: Vec::with_capacity(n),
            point_source_id: Vec::with_capacity(n),
            rgb: std::array::from_fn(|_| Vec::with_capacity(v(format.has_color))),
            nir: Vec::with_capacity(v(format.has_nir)),
            wave_index: Vec::new(),
            wave_offset: Vec::new(),
            wave_size: Vec::new(),
            wave_loc: Vec::new(),
            wave_xyz: Default::default(),
            extra_bytes: Vec::with_capacity(n * format.extra_bytes as usize),
        }
    }

    /// Appends `other`'s values after `self`'s.
    fn append(&mut self, mut o: LasColumns) {
        macro_rules! cat {
            ($($f:ident),*) => { $( self.$f.append(&mut o.$f); )* };
        }
        cat!(
            xyz,
            intensity,
            return_number,
            number_of_returns,
            classification,
            time,
            scanner_channel,
            scan_angle
        );
        cat!(user_data, point_source_id, nir, wave_index, wave_offset, wave_size, wave_loc, extra_bytes);
        for (a, b) in self.flags.iter_mut().zip(o.flags.iter_mut()) {
            a.append(b);
        }
        for (a, b) in self.rgb.iter_mut().zip(o.rgb.iter_mut()) {
            a.append(b);
        }
        for (a, b) in self.wave_xyz.iter_mut().zip(o.wave_xyz.iter_mut()) {
            a.append(b);
        }
    }

    /// Decodes raw point records (the on-disk layout of `layout`) into the columns.
    fn decode(&mut self, bytes: &[u8], layout: &RecordLayout, t: &Vector<Transform>) {
        let u16at = |r: &[u8], o: usize| u16::from_le_bytes([r[o], r[o + 1]]);
        let i32at = |r: &[u8], o: usize| i32::from_le_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]]);
        let f32at = |r: &[u8], o: usize| f32::from_le_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]]);
        let f64at = |r: &[u8], o: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&r[o..o + 8]);
            f64::from_le_bytes(a)
        };
        for r in bytes.chunks_exact(layout.len) {
            // Same arithmetic as las/laspy (`scale * X + offset`), hence the same bits.
            self.xyz.push([
                t.x.scale * f64::from(i32at(r, 0)) + t.x.offset,
                t.y.scale * f64::from(i32at(r, 4)) + t.y.offset,
                t.z.scale * f64::from(i32at(r, 8)) + t.z.offset,
            ]);
            self.intensity.push(f32::from(u16at(r, 12)));
            let (b14, b15) = (r[14], r[15]);
            if layout.extended {
                self.return_number.push(b14 & 0x0F);
                self.number_of_returns.push(b14 >> 4);
                self.classification.push(r[16]);
                for (k, bit) in [(2usize, 0u8), (3, 1), (4, 2), (5, 3)] {
                    self.flags[k].push((b15 >> bit) & 1);
                }
                self.scanner_channel.push((b15 >> 4) & 0x03);
                self.flags[0].push((b15 >> 6) & 1);
                self.flags[1].push(b15 >> 7);
                self.scan_angle.push(f32::from(i16::from_le_bytes([r[18], r[19]])) * SCAN_ANGLE_STEP_DEG);
                self.user_data.push(r[17]);
                self.point_source_id.push(u16at(r, 20));
            } else {
                self.return_number.push(b14 & 0x07);
                self.number_of_returns.push((b14 >> 3) & 0x07);
                self.flags[0].push((b14 >> 6) & 1);
                self.flags[1].push(b14 >> 7);
                let class = b15 & 0x1F;
                self.classification.push(class);
                self.flags[2].push((b15 >> 5) & 1);
                self.flags[3].push((b15 >> 6) & 1);
                self.flags[4].push(b15 >> 7);
                // Class 12 is how formats 0–5 mark overlap points.
                self.flags[5].push((class == 12) as u8);
                self.scan_angle.push(f32::from(r[16] as i8));
                self.user_data.push(r[17]);
                self.point_source_id.push(u16at(r, 18));
            }
            if let Some(o) = layout.time_at {
                self.time.push(f64at(r, o));
            }
            if let Some(o) = layout.rgb_at {
                for k in 0..3 {
                    self.rgb[k].push(u16at(r, o + 2 * k));
                }
            }
            if let Some(o) = layout.nir_at {
                self.nir.push(u16at(r, o));
            }
            if let Some(o) = layout.wave_at {
                self.wave_index.push(r[o]);
                self.wave_offset.push(u64::from_le_bytes(r[o + 1..o + 9].try_into().unwrap_or([0; 8])));
                self.wave_size.push(u32::from_le_bytes([r[o + 9], r[o + 10], r[o + 11], r[o + 12]]));
                self.wave_loc.push(f32at(r, o + 13));
                for k in 0..3 {
                    self.wave_xyz[k].push(f32at(r, o + 17 + 4 * k));
                }
            }
            self.extra_bytes.extend_from_slice(&r[layout.extra_at..layout.len]);
        }
    }

    fn into_cloud(self, frame: CloudFrame, time_base: TimeBase, format: &Format) -> PointCloud {
        use field::*;
        let mut c = PointCloud::from_positions(frame, self.xyz);
        c.intensity = Some(self.intensity);
        c.return_number = Some(self.return_number);
        c.number_of_returns = Some(self.number_of_returns);
        c.classification = Some(self.classification);
        if format.has_gps_time {
            c.time_s = Some(self.time);
            c.time_base = time_base;
        }
        let mut put = |name: &str, values: ColumnValues| {
            c.extra.insert(name.to_string(), Column::scalar(values));
        };
        let [sd, edge, syn, key, wh, ov] = self.flags;
        put(SCAN_DIRECTION, ColumnValues::U8(sd));
        put(EDGE_OF_FLIGHT_LINE, ColumnValues::U8(edge));
        put(SYNTHETIC, ColumnValues::U8(syn));
        put(KEY_POINT, ColumnValues::U8(key));
        put(WITHHELD, ColumnValues::U8(wh));
        put(OVERLAP, ColumnValues::U8(ov));
        if format.is_extended {
            put(SCANNER_CHANNEL, ColumnValues::U8(self.scanner_channel));
        }
        put(SCAN_ANGLE_DEG, ColumnValues::F32(self.scan_angle));
        put(USER_DATA, ColumnValues::U8(self.user_data));
        put(POINT_SOURCE_ID, ColumnValues::U16(self.point_source_id));
        if format.has_color {
            let [r, g, b] = self.rgb;
            put(RED, ColumnValues::U16(r));
            put(GREEN, ColumnValues::U16(g));
            put(BLUE, ColumnValues::U16(b));
        }
        if format.has_nir {
            put(NIR, ColumnValues::U16(self.nir));
        }
        if format.has_waveform {
            put(WAVEPACKET_INDEX, ColumnValues::U8(self.wave_index));
            put(WAVEPACKET_OFFSET, ColumnValues::U64(self.wave_offset));
            put(WAVEPACKET_SIZE, ColumnValues::U32(self.wave_size));
            put(RETURN_POINT_WAVE_LOCATION, ColumnValues::F32(self.wave_loc));
            let [xt, yt, zt] = self.wave_xyz;
            put(X_T, ColumnValues::F32(xt));
            put(Y_T, ColumnValues::F32(yt));
            put(Z_T, ColumnValues::F32(zt));
        }
        if format.extra_bytes > 0 {
            c.extra.insert(
                EXTRA_BYTES.to_string(),
                Column {
                    components: format.extra_bytes as usize,
                    values: ColumnValues::U8(self.extra_bytes),
                },
            );
        }
        c
    }
}

/// Reads a whole LAS/LAZ/COPC file. `progress` is called with the number of points read so far.
///
/// Fails with a one-line error naming the file when it is missing, empty, a directory,
/// truncated (fewer point records than the header announces), or not LAS.
pub fn read_las(path: &Path, mut progress: impl FnMut(u64)) -> Result<LasFile, IoError> {
    let file_len = check_input_file(path)?;
    check_las_length(path, file_len)?;
    let file = File::open(path).map_err(|source| IoError::Os { path: path.to_path_buf(), source })?;
    let mut reader = Reader::new(BufReader::with_capacity(1 << 20, file)).map_err(las_err(path))?;
    let header = header_info(reader.header());
    let format = *reader.header().point_format();
    let transforms = *reader.header().transforms();
    let layout =
        RecordLayout::of(header.point_format, format.extra_bytes).ok_or_else(|| IoError::Unsupported {
            path: path.to_path_buf(),
            detail: format!("point format {}", header.point_format),
        })?;
    let n = header.point_count;
    let mut cols = LasColumns::with_capacity(n as usize, &format);
    const CHUNK: u64 = 1 << 20;
    let mut done = 0u64;
    while done < n {
        let want = CHUNK.min(n - done);
        let data = reader.read_points(want).map_err(las_err(path))?;
        if (data.len() as u64) < want {
            return Err(IoError::Truncated {
                path: path.to_path_buf(),
                detail: format!("header announces {n} points, file holds {}", done + data.len() as u64),
            });
        }
        if data.record_len() != layout.len {
            return Err(IoError::Format {
                path: path.to_path_buf(),
                format: "LAS",
                detail: format!(
                    "point records are {} bytes, format {} needs {}",
                    data.record_len(),
                    header.point_format,
                    layout.len
                ),
            });
        }
        // Decode slices of the slab on all cores, then append them in order.
        let per_part = data.len().div_ceil(rayon::current_num_threads() * 2).max(1) * layout.len;
        let parts: Vec<LasColumns> = data
            .raw_bytes()
            .par_chunks(per_part)
            .map(|bytes| {
                let mut part = LasColumns::with_capacity(bytes.len() / layout.len, &format);
                part.decode(bytes, &layout, &transforms);
                part
            })
            .collect();
        for part in parts {
            cols.append(part);
        }
        done += want;
        progress(done);
    }
    let frame = match &header.crs {
        Some(c) => CloudFrame::World(c.clone()),
        None => CloudFrame::Undeclared,
    };
    let cloud = cols.into_cloud(frame, header.time_base, &format);
    cloud.validate().map_err(|source| IoError::Invalid { path: path.to_path_buf(), source })?;
    Ok(LasFile { cloud, header })
}

/// How to write a LAS/LAZ file. LAZ is chosen by the `.laz` extension.
#[derive(Debug, Clone)]
pub struct LasWriteOptions {
    /// LAS version (1.2, 1.3 or 1.4).
    pub version: (u8, u8),
    /// Point data format (0–10).
    pub point_format: u8,
    /// Coordinate scale (CRS units per integer step; 0.001 = 1 mm for metric CRSs).
    pub scale: [f64; 3],
    /// Coordinate offset.
    pub offset: [f64; 3],
    /// CRS to declare: a WKT VLR for LAS 1.4, GeoTIFF keys (EPSG only) below 1.4. `None`
    /// writes no CRS record beyond the passed-through VLRs.
    pub crs: Option<Crs>,
    /// System identifier (≤ 32 bytes).
    pub system_identifier: String,
    /// VLRs copied verbatim (except LAZ/COPC bookkeeping records, which are rebuilt or dropped).
    pub passthrough_vlrs: Vec<Vlr>,
    /// EVLRs copied verbatim (same exceptions).
    pub passthrough_evlrs: Vec<Vlr>,
    /// Set the WKT bit of the global encoding (LAS 1.4).
    pub wkt_bit: bool,
    /// File source id.
    pub file_source_id: u16,
    /// GUID.
    pub guid: uuid::Uuid,
}

impl LasWriteOptions {
    /// Options that reproduce the given file's header (version, format, scale, offset, VLRs),
    /// so that writing its points back is bit-exact.
    pub fn like(h: &LasHeaderInfo) -> Self {
        Self {
            version: h.version,
            point_format: h.point_format,
            scale: h.scale,
            offset: h.offset,
            crs: None,
            system_identifier: h.system_identifier.clone(),
            passthrough_vlrs: h.raw_vlrs.clone(),
            passthrough_evlrs: h.raw_evlrs.clone(),
            wkt_bit: h.has_wkt_crs_bit,
            file_source_id: h.file_source_id,
            guid: h.guid,
        }
    }

    /// LAS 1.4 options for a cloud: format 6 (7 with colour, 8 with NIR), 1 mm scale, offset
    /// at the floor of the cloud's minimum, CRS from the cloud's frame.
    pub fn for_cloud(cloud: &PointCloud) -> Self {
        let has = |n: &str| cloud.extra.contains_key(n);
        let point_format = if has(field::NIR) {
            8
        } else if has(field::RED) {
            7
        } else {
            6
        };
        let offset = cloud.bounds().map(|(lo, _)| lo.map(|v| v.floor())).unwrap_or([0.0; 3]);
        Self {
            version: (1, 4),
            point_format,
            scale: [0.001; 3],
            offset,
            crs: match &cloud.frame {
                CloudFrame::World(c) => Some(c.clone()),
                _ => None,
            },
            system_identifier: "hdmap".into(),
            passthrough_vlrs: Vec::new(),
            passthrough_evlrs: Vec::new(),
            wkt_bit: false,
            file_source_id: 0,
            guid: uuid::Uuid::nil(),
        }
    }
}

fn keep_vlr(v: &Vlr) -> bool {
    let user = v.user_id.trim_end_matches('\0');
    !(user == "laszip encoded" || user == "copc" || (user == "LASF_Spec" && v.record_id == 7))
}

/// GeoTIFF key directory VLR declaring an EPSG code (for LAS < 1.4, which has no WKT VLR).
fn geotiff_epsg_vlr(code: u32, projected: bool) -> Vlr {
    let (model, key) = if projected { (1u16, 3072u16) } else { (2, 2048) };
    let words: [u16; 16] = [1, 1, 0, 3, 1024, 0, 1, model, 1025, 0, 1, 1, key, 0, 1, code as u16];
    Vlr {
        user_id: "LASF_Projection".into(),
        record_id: 34735,
        description: "GeoTiff GeoKeyDirectoryTag".into(),
        data: words.iter().flat_map(|w| w.to_le_bytes()).collect(),
    }
}

fn col<'a>(cloud: &'a PointCloud, name: &str) -> Option<&'a ColumnValues> {
    cloud.extra.get(name).map(|c| &c.values)
}

/// Writes a cloud as LAS or LAZ (by extension), atomically. Channels the point format has no
/// room for are dropped; fields the format needs but the cloud lacks are written as zero.
/// Coordinates must fit the scale/offset (±2^31 steps) or the write fails naming the file.
pub fn write_las(path: &Path, cloud: &PointCloud, options: &LasWriteOptions) -> Result<(), IoError> {
    use field::*;
    cloud.validate().map_err(|source| IoError::Invalid { path: path.to_path_buf(), source })?;
    let compressed = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("laz"));
    let mut builder = Builder::from(Version::new(options.version.0, options.version.1));
    let mut format = Format::new(options.point_format).map_err(las_err(path))?;
    format.is_compressed = compressed;
    let extra_bytes = cloud.extra.get(EXTRA_BYTES).map(|c| c.components).unwrap_or(0);
    format.extra_bytes = extra_bytes as u16;
    builder.point_format = format;
    builder.transforms = Vector {
        x: Transform { scale: options.scale[0], offset: options.offset[0] },
        y: Transform { scale: options.scale[1], offset: options.offset[1] },
        z: Transform { scale: options.scale[2], offset: options.offset[2] },
    };
    builder.system_identifier = options.system_identifier.clone();
    builder.generating_software = format!("hdmap {}", env!("CARGO_PKG_VERSION"));
    builder.file_source_id = options.file_source_id;
    builder.guid = options.guid;
    // LAS stores GPS time: Unix (UTC) times are converted to adjusted standard GPS time.
    builder.gps_time_type = match cloud.time_base {
        TimeBase::GpsAdjustedStandard | TimeBase::Unix => GpsTimeType::Standard,
        _ => GpsTimeType::Week,
    };
    let drop_crs = options.crs.is_some();
    builder.vlrs = options
        .passthrough_vlrs
        .iter()
        .filter(|v| keep_vlr(v) && !(drop_crs && v.is_crs()))
        .cloned()
        .collect();
    builder.evlrs = options
        .passthrough_evlrs
        .iter()
        .filter(|v| keep_vlr(v) && !(drop_crs && v.is_crs()))
        .cloned()
        .collect();
    builder.has_wkt_crs = options.wkt_bit && options.version >= (1, 4);
    if let Some(crs) = &options.crs {
        if options.version >= (1, 4) {
            let wkt = match crs {
                Crs::Wkt { wkt, .. } => Some(wkt.clone()),
                Crs::Epsg(code) => wkt_for_epsg(*code),
            }
            .ok_or_else(|| IoError::Unsupported {
                path: path.to_path_buf(),
                detail: format!("no WKT for {crs}"),
            })?;
            builder.vlrs.push(Vlr {
                user_id: "LASF_Projection".into(),
                record_id: 2112,
                description: "OGC WKT coordinate system".into(),
                data: wkt.into_bytes(),
            });
            builder.has_wkt_crs = true;
        } else if let Some(code) = crs.epsg() {
            let projected =
                gdal::spatial_ref::SpatialRef::from_epsg(code).map(|s| s.is_projected()).unwrap_or(true);
            builder.vlrs.push(geotiff_epsg_vlr(code, projected));
        } else {
            return Err(IoError::Unsupported {
                path: path.to_path_buf(),
                detail: format!(
                    "LAS {}.{} can only declare EPSG CRSs, not {crs}",
                    options.version.0, options.version.1
                ),
            });
        }
    }
    let header = builder.into_header().map_err(las_err(path))?;

    let n = cloud.len();
    let get_u8 = |name: &str| match col(cloud, name) {
        Some(ColumnValues::U8(v)) => Some(v.as_slice()),
        _ => None,
    };
    let get_u16 = |name: &str| match col(cloud, name) {
        Some(ColumnValues::U16(v)) => Some(v.as_slice()),
        _ => None,
    };
    let get_f32 = |name: &str| match col(cloud, name) {
        Some(ColumnValues::F32(v)) => Some(v.as_slice()),
        _ => None,
    };
    let flags: Vec<Option<&[u8]>> =
        [SCAN_DIRECTION, EDGE_OF_FLIGHT_LINE, SYNTHETIC, KEY_POINT, WITHHELD, OVERLAP]
            .iter()
            .map(|f| get_u8(f))
            .collect();
    let scanner_channel = get_u8(SCANNER_CHANNEL);
    let scan_angle = get_f32(SCAN_ANGLE_DEG);
    let user_data = get_u8(USER_DATA);
    let psid = get_u16(POINT_SOURCE_ID);
    let rgb = [get_u16(RED), get_u16(GREEN), get_u16(BLUE)];
    let nir = get_u16(NIR);
    let wave_index = get_u8(WAVEPACKET_INDEX);
    let wave_offset = match col(cloud, WAVEPACKET_OFFSET) {
        Some(ColumnValues::U64(v)) => Some(v.as_slice()),
        _ => None,
    };
    let wave_size = match col(cloud, WAVEPACKET_SIZE) {
        Some(ColumnValues::U32(v)) => Some(v.as_slice()),
        _ => None,
    };
    let wave_loc = get_f32(RETURN_POINT_WAVE_LOCATION);
    let wave_xyz = [get_f32(X_T), get_f32(Y_T), get_f32(Z_T)];
    let eb = match cloud.extra.get(EXTRA_BYTES) {
        Some(Column { components, values: ColumnValues::U8(v) }) => Some((*components, v.as_slice())),
        _ => None,
    };
    let at = |c: Option<&[u8]>, i: usize| c.map(|v| v[i]).unwrap_or(0);
    let layout =
        RecordLayout::of(options.point_format, extra_bytes as u16).ok_or_else(|| IoError::Unsupported {
            path: path.to_path_buf(),
            detail: format!("point format {}", options.point_format),
        })?;
    let transforms = *header.transforms();
    let classification = cloud.classification.as_deref();
    let intensity = cloud.intensity.as_deref();
    let returns = (cloud.return_number.as_deref(), cloud.number_of_returns.as_deref());
    let gps_from_unix: Option<Vec<f64>> = match (cloud.time_base, cloud.time_s.as_deref()) {
        (TimeBase::Unix, Some(t)) => {
            Some(t.iter().map(|v| hdmap_core::time::unix_to_gps_adjusted_s(*v)).collect())
        }
        _ => None,
    };
    let time = gps_from_unix.as_deref().or(cloud.time_s.as_deref());
    // Encodes point i into `r` (one record, zeroed) in the on-disk layout.
    let encode = |i: usize, r: &mut [u8]| {
        let p = cloud.positions.get(i);
        let steps = |v: f64, t: &Transform| ((v - t.offset) / t.scale).round() as i32;
        r[0..4].copy_from_slice(&steps(p[0], &transforms.x).to_le_bytes());
        r[4..8].copy_from_slice(&steps(p[1], &transforms.y).to_le_bytes());
        r[8..12].copy_from_slice(&steps(p[2], &transforms.z).to_le_bytes());
        let inten = intensity.map(|v| v[i].clamp(0.0, 65535.0).round() as u16).unwrap_or(0);
        r[12..14].copy_from_slice(&inten.to_le_bytes());
        let ret = returns.0.map(|v| v[i]).unwrap_or(1);
        let nret = returns.1.map(|v| v[i]).unwrap_or(1);
        let class = classification.map(|v| v[i]).unwrap_or(0);
        let flag = |k: usize| at(flags[k], i) & 1;
        let angle = scan_angle.map(|v| v[i]).unwrap_or(0.0);
        if layout.extended {
            r[14] = (ret & 0x0F) | (nret << 4);
            r[15] = flag(2)
                | flag(3) << 1
                | flag(4) << 2
                | flag(5) << 3
                | (at(scanner_channel, i) & 0x03) << 4
                | flag(0) << 6
                | flag(1) << 7;
            r[16] = class;
            r[17] = at(user_data, i);
            let raw = (angle / SCAN_ANGLE_STEP_DEG).round().clamp(i16::MIN as f32, i16::MAX as f32) as i16;
            r[18..20].copy_from_slice(&raw.to_le_bytes());
            r[20..22].copy_from_slice(&psid.map(|v| v[i]).unwrap_or(0).to_le_bytes());
        } else {
            r[14] = (ret & 0x07) | (nret & 0x07) << 3 | flag(0) << 6 | flag(1) << 7;
            // Overlap has no flag in formats 0–5: it is class 12.
            let class = if flag(5) == 1 { 12 } else { class & 0x1F };
            r[15] = class | flag(2) << 5 | flag(3) << 6 | flag(4) << 7;
            r[16] = angle.round().clamp(-128.0, 127.0) as i8 as u8;
            r[17] = at(user_data, i);
            r[18..20].copy_from_slice(&psid.map(|v| v[i]).unwrap_or(0).to_le_bytes());
        }
        if let Some(o) = layout.time_at {
            r[o..o + 8].copy_from_slice(&time.map(|v| v[i]).unwrap_or(0.0).to_le_bytes());
        }
        if let Some(o) = layout.rgb_at {
            for (k, c) in rgb.iter().enumerate() {
                r[o + 2 * k..o + 2 * k + 2].copy_from_slice(&c.map(|v| v[i]).unwrap_or(0).to_le_bytes());
            }
        }
        if let Some(o) = layout.nir_at {
            r[o..o + 2].copy_from_slice(&nir.map(|v| v[i]).unwrap_or(0).to_le_bytes());
        }
        if let Some(o) = layout.wave_at {
            r[o] = at(wave_index, i);
            r[o + 1..o + 9].copy_from_slice(&wave_offset.map(|v| v[i]).unwrap_or(0).to_le_bytes());
            r[o + 9..o + 13].copy_from_slice(&wave_size.map(|v| v[i]).unwrap_or(0).to_le_bytes());
            r[o + 13..o + 17].copy_from_slice(&wave_loc.map(|v| v[i]).unwrap_or(0.0).to_le_bytes());
            for (k, c) in wave_xyz.iter().enumerate() {
                r[o + 17 + 4 * k..o + 21 + 4 * k]
                    .copy_from_slice(&c.map(|v| v[i]).unwrap_or(0.0).to_le_bytes());
            }
        }
        if let Some((k, v)) = eb {
            r[layout.extra_at..layout.extra_at + k].copy_from_slice(&v[i * k..(i + 1) * k]);
        }
    };

    // Check that coordinates fit the integer range before touching the output.
    if let Some((lo, hi)) = cloud.bounds() {
        for k in 0..3 {
            for v in [lo[k], hi[k]] {
                let steps = ((v - options.offset[k]) / options.scale[k]).round();
                if !(i32::MIN as f64..=i32::MAX as f64).contains(&steps) {
                    return Err(IoError::Format {
                        path: path.to_path_buf(),
                        format: "LAS",
                        detail: format!(
                            "coordinate {v} on axis {k} does not fit scale {} / offset {}",
                            options.scale[k], options.offset[k]
                        ),
                    });
                }
            }
        }
    }

    write_atomic_via_path(path, |tmp| {
        let os = |source| IoError::Os { path: path.to_path_buf(), source };
        let file = File::create(tmp).map_err(os)?;
        let mut writer = las::Writer::new(std::io::BufWriter::with_capacity(1 << 20, file), header)
            .map_err(las_err(path))?;
        // Encode in slabs (parallel over points) and hand each slab to the LAZ compressor
        // whole, which compresses its chunks in parallel.
        const SLAB: usize = 1 << 20;
        let mut start = 0;
        while start < n {
            let end = (start + SLAB).min(n);
            let mut bytes = vec![0u8; (end - start) * layout.len];
            bytes.par_chunks_mut(layout.len).enumerate().for_each(|(j, r)| encode(start + j, r));
            let data = las::PointDataBuilder::new()
                .for_header(writer.header())
                .build_from_bytes(bytes)
                .map_err(las_err(path))?;
            writer.write_points(&data).map_err(las_err(path))?;
            start = end;
        }
        writer.close().map_err(las_err(path))?;
        let file =
            writer.into_inner().map_err(las_err(path))?.into_inner().map_err(|e| os(e.into_error()))?;
        file.sync_all().map_err(os)?;
        Ok(())
    })
}
