//! PCD v0.7 (PCL's point cloud format): `ascii`, `binary` and `binary_compressed` (LZF) data,
//! any fields, any `COUNT`.
//!
//! Well-known fields map to typed channels when that is lossless: `x y z` → positions,
//! `intensity` (F4/U1/U2/I1/I2) → intensity, `ring` (U1/U2) → ring, `timestamp`/`time`
//! (F4/F8) → per-point time (time base unknown: PCD does not say), `label`/`class`/`instance`
//! (unsigned ≤ 4 bytes) → label channels. Every other field becomes an `extra` column of its
//! own type. [`PcdHeader`] remembers the field layout so that [`write_pcd`] with
//! [`PcdWriteOptions::like`] writes every field back with its original type, bit-exactly.
//!
//! Points with a non-finite coordinate (PCL's "invalid" points in organized clouds) are
//! dropped on read and counted in [`PcdFile::dropped_non_finite`].

use std::io::Write;
use std::path::Path;

use hdmap_core::{CloudFrame, Column, ColumnValues, PointCloud, TimeBase};
use serde::Serialize;

use crate::IoError;
use crate::fsutil::{check_input_file, write_atomic};

/// Encoding of the DATA section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PcdEncoding {
    /// Text, one point per line.
    Ascii,
    /// Packed little-endian records, point-major.
    Binary,
    /// LZF-compressed, field-major.
    BinaryCompressed,
}

/// Scalar type of a PCD field (`TYPE` + `SIZE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[allow(missing_docs)]
pub enum PcdType {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
}

impl PcdType {
    fn parse(kind: &str, size: usize) -> Option<Self> {
        Some(match (kind, size) {
            ("I", 1) => PcdType::I8,
            ("I", 2) => PcdType::I16,
            ("I", 4) => PcdType::I32,
            ("I", 8) => PcdType::I64,
            ("U", 1) => PcdType::U8,
            ("U", 2) => PcdType::U16,
            ("U", 4) => PcdType::U32,
            ("U", 8) => PcdType::U64,
            ("F", 4) => PcdType::F32,
            ("F", 8) => PcdType::F64,
            _ => return None,
        })
    }

    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            PcdType::I8 | PcdType::U8 => 1,
            PcdType::I16 | PcdType::U16 => 2,
            PcdType::I32 | PcdType::U32 | PcdType::F32 => 4,
            PcdType::I64 | PcdType::U64 | PcdType::F64 => 8,
        }
    }

    fn letter(self) -> char {
        match self {
            PcdType::I8 | PcdType::I16 | PcdType::I32 | PcdType::I64 => 'I',
            PcdType::U8 | PcdType::U16 | PcdType::U32 | PcdType::U64 => 'U',
            PcdType::F32 | PcdType::F64 => 'F',
        }
    }

    fn of(values: &ColumnValues) -> Self {
        match values {
            ColumnValues::U8(_) => PcdType::U8,
            ColumnValues::I8(_) => PcdType::I8,
            ColumnValues::U16(_) => PcdType::U16,
            ColumnValues::I16(_) => PcdType::I16,
            ColumnValues::U32(_) => PcdType::U32,
            ColumnValues::I32(_) => PcdType::I32,
            ColumnValues::U64(_) => PcdType::U64,
            ColumnValues::I64(_) => PcdType::I64,
            ColumnValues::F32(_) => PcdType::F32,
            ColumnValues::F64(_) => PcdType::F64,
        }
    }
}

/// One field of a PCD header.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PcdField {
    /// Field name (`_` is padding).
    pub name: String,
    /// Scalar type.
    pub kind: PcdType,
    /// Values per point.
    pub count: usize,
}

/// A parsed PCD header.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PcdHeader {
    /// VERSION (e.g. `0.7`).
    pub version: String,
    /// Fields in file order.
    pub fields: Vec<PcdField>,
    /// WIDTH.
    pub width: usize,
    /// HEIGHT (1 = unorganized).
    pub height: usize,
    /// VIEWPOINT: tx ty tz qw qx qy qz.
    pub viewpoint: [f64; 7],
    /// POINTS.
    pub points: usize,
    /// DATA encoding.
    pub encoding: PcdEncoding,
}

impl PcdHeader {
    fn record_size(&self) -> usize {
        self.fields.iter().map(|f| f.kind.size() * f.count).sum()
    }
}

/// A PCD file read into memory.
#[derive(Debug, Clone)]
pub struct PcdFile {
    /// The points (sensor frame: PCD carries no CRS).
    pub cloud: PointCloud,
    /// The header as found in the file.
    pub header: PcdHeader,
    /// Points dropped because a coordinate was NaN or infinite.
    pub dropped_non_finite: usize,
}

fn fmt_err(path: &Path, detail: impl Into<String>) -> IoError {
    IoError::Format { path: path.to_path_buf(), format: "PCD", detail: detail.into() }
}

/// Parses the header; returns it and the byte offset of the data section.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<(PcdHeader, usize), IoError> {
    let mut pos = 0usize;
    let mut version = String::from("0.7");
    let (mut names, mut sizes, mut types, mut counts) = (None, None, None, None);
    let (mut width, mut height, mut points) = (None, None, None);
    let mut viewpoint = [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0];
    let mut line_no = 0usize;
    loop {
        if pos >= bytes.len() {
            return Err(IoError::Truncated {
                path: path.to_path_buf(),
                detail: "header has no DATA line".into(),
            });
        }
        let end = bytes[pos..].iter().position(|&b| b == b'\n').map(|e| pos + e + 1).unwrap_or(bytes.len());
        let line = std::str::from_utf8(&bytes[pos..end])
            .map_err(|_| fmt_err(path, format!("header line {} is not text", line_no + 1)))?
            .trim();
        pos = end;
        line_no += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let key = it.next().unwrap_or_default().to_ascii_uppercase();
        let rest: Vec<&str> = it.collect();
        let num = |what: &str| -> Result<usize, IoError> {
            rest.first()
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| fmt_err(path, format!("line {line_no}: {what} needs a non-negative integer")))
        };
        match key.as_str() {
            "VERSION" => version = rest.first().map(|s| s.to_string()).unwrap_or_default(),
            "FIELDS" | "COLUMNS" => names = Some(rest.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            "SIZE" => {
                sizes = Some(
                    rest.iter()
                        .map(|s| s.parse::<usize>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| fmt_err(path, format!("line {line_no}: bad SIZE")))?,
                )
            }
            "TYPE" => types = Some(rest.iter().map(|s| s.to_ascii_uppercase()).collect::<Vec<_>>()),
            "COUNT" => {
                counts = Some(
                    rest.iter()
                        .map(|s| s.parse::<usize>())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| fmt_err(path, format!("line {line_no}: bad COUNT")))?,
                )
            }
            "WIDTH" => width = Some(num("WIDTH")?),
            "HEIGHT" => height = Some(num("HEIGHT")?),
            "POINTS" => points = Some(num("POINTS")?),
            "VIEWPOINT" => {
                let v: Vec<f64> = rest.iter().filter_map(|s| s.parse().ok()).collect();
                if v.len() != 7 {
                    return Err(fmt_err(path, format!("line {line_no}: VIEWPOINT needs 7 numbers")));
                }
                viewpoint.copy_from_slice(&v);
            }
            "DATA" => {
                let encoding = match rest.first().map(|s| s.to_ascii_lowercase()).as_deref() {
                    Some("ascii") => PcdEncoding::Ascii,
                    Some("binary") => PcdEncoding::Binary,
                    Some("binary_compressed") => PcdEncoding::BinaryCompressed,
                    other => return Err(fmt_err(path, format!("line {line_no}: unknown DATA {other:?}"))),
                };
                let names = names.ok_or_else(|| fmt_err(path, "missing FIELDS"))?;
                let sizes = sizes.ok_or_else(|| fmt_err(path, "missing SIZE"))?;
                let types = types.ok_or_else(|| fmt_err(path, "missing TYPE"))?;
                let counts = counts.unwrap_or_else(|| vec![1; names.len()]);
                if sizes.len() != names.len() || types.len() != names.len() || counts.len() != names.len() {
                    return Err(fmt_err(
                        path,
                        format!(
                            "FIELDS/SIZE/TYPE/COUNT disagree: {} names, {} sizes, {} types, {} counts",
                            names.len(),
                            sizes.len(),
                            types.len(),
                            counts.len()
                        ),
                    ));
                }
                let mut fields = Vec::new();
                for i in 0..names.len() {
                    let kind = PcdType::parse(&types[i], sizes[i]).ok_or_else(|| {
                        fmt_err(
                            path,
                            format!(
                                "field `{}`: TYPE {} with SIZE {} is not valid",
                                names[i], types[i], sizes[i]
                            ),
                        )
                    })?;
                    if counts[i] == 0 {
                        return Err(fmt_err(path, format!("field `{}` has COUNT 0", names[i])));
                    }
                    fields.push(PcdField { name: names[i].clone(), kind, count: counts[i] });
                }
                let width = width.ok_or_else(|| fmt_err(path, "missing WIDTH"))?;
                let height = height.unwrap_or(1);
                let points = points.unwrap_or(width * height);
                if width.checked_mul(height) != Some(points) {
                    return Err(fmt_err(path, format!("POINTS {points} ≠ WIDTH {width} × HEIGHT {height}")));
                }
                for axis in ["x", "y", "z"] {
                    if !fields.iter().any(|f| f.name == axis && f.count == 1) {
                        return Err(fmt_err(path, format!("no scalar `{axis}` field")));
                    }
                }
                return Ok((PcdHeader { version, fields, width, height, viewpoint, points, encoding }, pos));
            }
            other => return Err(fmt_err(path, format!("line {line_no}: unknown header key `{other}`"))),
        }
    }
}

/// A raw column while decoding: values in their file type.
fn empty_values(kind: PcdType, n: usize) -> ColumnValues {
    match kind {
        PcdType::I8 => ColumnValues::I8(Vec::with_capacity(n)),
        PcdType::I16 => ColumnValues::I16(Vec::with_capacity(n)),
        PcdType::I32 => ColumnValues::I32(Vec::with_capacity(n)),
        PcdType::I64 => ColumnValues::I64(Vec::with_capacity(n)),
        PcdType::U8 => ColumnValues::U8(Vec::with_capacity(n)),
        PcdType::U16 => ColumnValues::U16(Vec::with_capacity(n)),
        PcdType::U32 => ColumnValues::U32(Vec::with_capacity(n)),
        PcdType::U64 => ColumnValues::U64(Vec::with_capacity(n)),
        PcdType::F32 => ColumnValues::F32(Vec::with_capacity(n)),
        PcdType::F64 => ColumnValues::F64(Vec::with_capacity(n)),
    }
}

fn push_le(values: &mut ColumnValues, b: &[u8]) {
    macro_rules! le {
        ($v:expr, $t:ty) => {{
            let mut a = [0u8; std::mem::size_of::<$t>()];
            a.copy_from_slice(b);
            $v.push(<$t>::from_le_bytes(a))
        }};
    }
    match values {
        ColumnValues::I8(v) => le!(v, i8),
        ColumnValues::I16(v) => le!(v, i16),
        ColumnValues::I32(v) => le!(v, i32),
        ColumnValues::I64(v) => le!(v, i64),
        ColumnValues::U8(v) => le!(v, u8),
        ColumnValues::U16(v) => le!(v, u16),
        ColumnValues::U32(v) => le!(v, u32),
        ColumnValues::U64(v) => le!(v, u64),
        ColumnValues::F32(v) => le!(v, f32),
        ColumnValues::F64(v) => le!(v, f64),
    }
}

fn push_text(values: &mut ColumnValues, s: &str) -> bool {
    // PCL writes "nan" for invalid floats; integers must parse exactly.
    match values {
        ColumnValues::I8(v) => s.parse().map(|x| v.push(x)).is_ok(),
        ColumnValues::I16(v) => s.parse().map(|x| v.push(x)).is_ok(),
        ColumnValues::I32(v) => s.parse().map(|x| v.push(x)).is_ok(),
        ColumnValues::I64(v) => s.parse().map(|x| v.push(x)).is_ok(),
        ColumnValues::U8(v) => s.parse().map(|x| v.push(x)).is_ok(),
        ColumnValues::U16(v) => s.parse().map(|x| v.push(x)).is_ok(),
        ColumnValues::U32(v) => s.parse().map(|x| v.push(x)).is_ok(),
        ColumnValues::U64(v) => s.parse().map(|x| v.push(x)).is_ok(),
        ColumnValues::F32(v) => s.parse().map(|x| v.push(x)).is_ok(),
        ColumnValues::F64(v) => s.parse().map(|x| v.push(x)).is_ok(),
    }
}

/// Reads a PCD file.
pub fn read_pcd(path: &Path) -> Result<PcdFile, IoError> {
    check_input_file(path)?;
    let bytes = std::fs::read(path).map_err(|source| IoError::Os { path: path.to_path_buf(), source })?;
    let (header, data_start) = parse_header(path, &bytes)?;
    let data = &bytes[data_start..];
    let n = header.points;
    let rec = header.record_size();
    let mut cols: Vec<ColumnValues> =
        header.fields.iter().map(|f| empty_values(f.kind, n * f.count)).collect();
    match header.encoding {
        PcdEncoding::Ascii => {
            let text =
                std::str::from_utf8(data).map_err(|_| fmt_err(path, "ascii data is not UTF-8 text"))?;
            let mut lines = text.lines().filter(|l| !l.trim().is_empty());
            let values_per_point: usize = header.fields.iter().map(|f| f.count).sum();
            for i in 0..n {
                let line = lines.next().ok_or_else(|| IoError::Truncated {
                    path: path.to_path_buf(),
                    detail: format!("header announces {n} points, data has {i} lines"),
                })?;
                let toks: Vec<&str> = line.split_whitespace().collect();
                if toks.len() != values_per_point {
                    return Err(fmt_err(
                        path,
                        format!("point {i}: {} values, header declares {values_per_point}", toks.len()),
                    ));
                }
                let mut t = toks.iter();
                for (f, col) in header.fields.iter().zip(cols.iter_mut()) {
                    for _ in 0..f.count {
                        let tok = t.next().copied().unwrap_or_default();
                        if !push_text(col, tok) {
                            return Err(fmt_err(
                                path,
                                format!("point {i}: `{tok}` is not a valid {:?} for `{}`", f.kind, f.name),
                            ));
                        }
                    }
                }
            }
        }
        PcdEncoding::Binary => {
            let need = n.checked_mul(rec).ok_or_else(|| fmt_err(path, "point count overflows"))?;
            if data.len() < need {
                return Err(IoError::Truncated {
                    path: path.to_path_buf(),
                    detail: format!(
                        "header announces {n} points × {rec} bytes = {need} bytes, data has {}",
                        data.len()
                    ),
                });
            }
            let mut offsets = Vec::new();
            let mut o = 0;
            for f in &header.fields {
                offsets.push(o);
                o += f.kind.size() * f.count;
            }
            for r in data[..need].chunks_exact(rec) {
                for ((f, col), off) in header.fields.iter().zip(cols.iter_mut()).zip(&offsets) {
                    let s = f.kind.size();
                    for k in 0..f.count {
                        push_le(col, &r[off + k * s..off + (k + 1) * s]);
                    }
                }
            }
        }
        PcdEncoding::BinaryCompressed => {
            if data.len() < 8 {
                return Err(IoError::Truncated {
                    path: path.to_path_buf(),
                    detail: "no compressed-size words".into(),
                });
            }
            let compressed = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
            let uncompressed = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
            let need = n.checked_mul(rec).ok_or_else(|| fmt_err(path, "point count overflows"))?;
            if uncompressed != need {
                return Err(fmt_err(
                    path,
                    format!(
                        "uncompressed size {uncompressed} ≠ {n} points × {rec} bytes = {need} from the header"
                    ),
                ));
            }
            if data.len() - 8 < compressed {
                return Err(IoError::Truncated {
                    path: path.to_path_buf(),
                    detail: format!("compressed block of {compressed} bytes, file holds {}", data.len() - 8),
                });
            }
            // LZF cannot expand more than ~100x; refuse absurd sizes before allocating.
            if need > 0 && need > compressed.saturating_mul(128) + 1024 {
                return Err(fmt_err(
                    path,
                    format!("uncompressed size {need} is impossible for {compressed} LZF bytes"),
                ));
            }
            let raw = if need == 0 {
                Vec::new()
            } else {
                lzf::decompress(&data[8..8 + compressed], need)
                    .map_err(|e| fmt_err(path, format!("LZF data corrupt: {e:?}")))?
            };
            if raw.len() != need {
                return Err(fmt_err(
                    path,
                    format!("LZF block decompressed to {} bytes, expected {need}", raw.len()),
                ));
            }
            let mut o = 0;
            for (f, col) in header.fields.iter().zip(cols.iter_mut()) {
                let s = f.kind.size();
                let block = &raw[o..o + n * f.count * s];
                for v in block.chunks_exact(s) {
                    push_le(col, v);
                }
                o += n * f.count * s;
            }
        }
    }
    let (cloud, dropped) = columns_to_cloud(&header, cols);
    cloud.validate().map_err(|source| IoError::Invalid { path: path.to_path_buf(), source })?;
    Ok(PcdFile { cloud, header, dropped_non_finite: dropped })
}

fn to_f64(values: &ColumnValues) -> Vec<f64> {
    (0..values.len()).map(|i| values.get_f64(i)).collect()
}

fn columns_to_cloud(header: &PcdHeader, cols: Vec<ColumnValues>) -> (PointCloud, usize) {
    let n = header.points;
    let mut axes: [Vec<f64>; 3] = Default::default();
    let mut cloud = PointCloud::from_positions(CloudFrame::Undeclared, Vec::new());
    cloud.time_base = TimeBase::Unknown;
    for (f, values) in header.fields.iter().zip(cols) {
        let name = f.name.as_str();
        use PcdType as T;
        match (name, f.kind, f.count) {
            ("x", _, 1) => axes[0] = to_f64(&values),
            ("y", _, 1) => axes[1] = to_f64(&values),
            ("z", _, 1) => axes[2] = to_f64(&values),
            ("_", _, _) => {}
            ("intensity", T::F32 | T::U8 | T::U16 | T::I8 | T::I16, 1) => {
                cloud.intensity = Some(to_f64(&values).into_iter().map(|v| v as f32).collect())
            }
            ("ring", T::U8 | T::U16, 1) => {
                cloud.ring = Some(to_f64(&values).into_iter().map(|v| v as u16).collect())
            }
            ("timestamp" | "time", T::F32 | T::F64, 1) => cloud.time_s = Some(to_f64(&values)),
            ("label" | "class" | "instance", T::U8 | T::U16 | T::U32, 1) => {
                let key = if name == "label" { "class" } else { name };
                cloud.labels.insert(key.to_string(), to_f64(&values).into_iter().map(|v| v as u32).collect());
            }
            _ => {
                cloud.extra.insert(name.to_string(), Column { components: f.count, values });
            }
        }
    }
    let keep: Vec<bool> = (0..n).map(|i| axes.iter().all(|a| a[i].is_finite())).collect();
    let positions: Vec<[f64; 3]> = (0..n).map(|i| [axes[0][i], axes[1][i], axes[2][i]]).collect();
    cloud.positions = hdmap_core::Positions::Absolute(positions);
    let dropped = keep.iter().filter(|k| !**k).count();
    if dropped > 0 {
        // Lengths agree by construction, so retain cannot fail.
        let _ = cloud.retain(&keep);
    }
    (cloud, dropped)
}

/// How to write a PCD file.
#[derive(Debug, Clone)]
pub struct PcdWriteOptions {
    /// DATA encoding.
    pub encoding: PcdEncoding,
    /// Field layout; `None` derives one from the cloud ([`default_fields`]).
    pub fields: Option<Vec<PcdField>>,
    /// VIEWPOINT.
    pub viewpoint: [f64; 7],
}

impl PcdWriteOptions {
    /// Options with the given encoding and the cloud's own field layout.
    pub fn new(encoding: PcdEncoding) -> Self {
        Self { encoding, fields: None, viewpoint: [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0] }
    }

    /// Options reproducing a file's layout and encoding.
    pub fn like(h: &PcdHeader) -> Self {
        Self { encoding: h.encoding, fields: Some(h.fields.clone()), viewpoint: h.viewpoint }
    }
}

/// The field layout [`write_pcd`] uses for a cloud without an explicit one: `x y z` as F4
/// (F8 when any coordinate exceeds ±100 km, so world clouds keep millimetres), then each present
/// channel in its hdmap type, then labels (U4) and extras.
pub fn default_fields(cloud: &PointCloud) -> Vec<PcdField> {
    let f = |name: &str, kind: PcdType| PcdField { name: name.to_string(), kind, count: 1 };
    let big = cloud.bounds().is_some_and(|(lo, hi)| lo.iter().chain(hi.iter()).any(|v| v.abs() > 1e5));
    let xyz = if big { PcdType::F64 } else { PcdType::F32 };
    let mut out = vec![f("x", xyz), f("y", xyz), f("z", xyz)];
    if cloud.intensity.is_some() {
        out.push(f("intensity", PcdType::F32));
    }
    if cloud.ring.is_some() {
        out.push(f("ring", PcdType::U16));
    }
    if cloud.time_s.is_some() {
        out.push(f("timestamp", PcdType::F64));
    }
    for name in cloud.labels.keys() {
        out.push(f(if name == "class" { "label" } else { name }, PcdType::U32));
    }
    for (name, c) in &cloud.extra {
        out.push(PcdField { name: name.clone(), kind: PcdType::of(&c.values), count: c.components });
    }
    out
}

/// Source of one field's values at write time.
enum Source<'a> {
    Axis(usize),
    Intensity(&'a [f32]),
    Ring(&'a [u16]),
    Time(&'a [f64]),
    Label(&'a [u32]),
    Extra(&'a Column),
    Zero,
}

fn put_le(out: &mut Vec<u8>, kind: PcdType, v: f64) {
    match kind {
        PcdType::I8 => out.extend((v as i8).to_le_bytes()),
        PcdType::I16 => out.extend((v as i16).to_le_bytes()),
        PcdType::I32 => out.extend((v as i32).to_le_bytes()),
        PcdType::I64 => out.extend((v as i64).to_le_bytes()),
        PcdType::U8 => out.extend((v as u8).to_le_bytes()),
        PcdType::U16 => out.extend((v as u16).to_le_bytes()),
        PcdType::U32 => out.extend((v as u32).to_le_bytes()),
        PcdType::U64 => out.extend((v as u64).to_le_bytes()),
        PcdType::F32 => out.extend((v as f32).to_le_bytes()),
        PcdType::F64 => out.extend(v.to_le_bytes()),
    }
}

/// Value `k` of point `i` written as `kind`, exactly when the column already has that type
/// (64-bit integers and f32 must not pass through f64 rounding or formatting).
fn extra_bytes_le(c: &Column, i: usize, k: usize, kind: PcdType, out: &mut Vec<u8>) {
    let j = i * c.components + k;
    match (&c.values, kind) {
        (ColumnValues::U64(v), PcdType::U64) => out.extend(v[j].to_le_bytes()),
        (ColumnValues::I64(v), PcdType::I64) => out.extend(v[j].to_le_bytes()),
        (ColumnValues::F32(v), PcdType::F32) => out.extend(v[j].to_le_bytes()),
        (values, kind) => put_le(out, kind, values.get_f64(j)),
    }
}

fn extra_text(c: &Column, i: usize, k: usize, kind: PcdType) -> String {
    let j = i * c.components + k;
    match (&c.values, kind) {
        (ColumnValues::U64(v), _) => v[j].to_string(),
        (ColumnValues::I64(v), _) => v[j].to_string(),
        (ColumnValues::F32(v), PcdType::F32) => v[j].to_string(),
        (values, kind) => text_of(kind, values.get_f64(j)),
    }
}

fn text_of(kind: PcdType, v: f64) -> String {
    match kind {
        PcdType::F32 => (v as f32).to_string(),
        PcdType::F64 => v.to_string(),
        PcdType::I8 | PcdType::I16 | PcdType::I32 | PcdType::I64 => (v as i64).to_string(),
        PcdType::U8 | PcdType::U16 | PcdType::U32 | PcdType::U64 => (v as u64).to_string(),
    }
}

/// Writes a cloud as PCD, atomically. With an explicit field layout, fields the cloud does not
/// have are written as zeros and channels the layout does not name are not written.
pub fn write_pcd(path: &Path, cloud: &PointCloud, options: &PcdWriteOptions) -> Result<(), IoError> {
    cloud.validate().map_err(|source| IoError::Invalid { path: path.to_path_buf(), source })?;
    let fields = options.fields.clone().unwrap_or_else(|| default_fields(cloud));
    let n = cloud.len();
    let sources: Vec<Source<'_>> = fields
        .iter()
        .map(|f| match f.name.as_str() {
            "x" => Source::Axis(0),
            "y" => Source::Axis(1),
            "z" => Source::Axis(2),
            "intensity" if cloud.intensity.is_some() => {
                Source::Intensity(cloud.intensity.as_deref().unwrap_or(&[]))
            }
            "ring" if cloud.ring.is_some() => Source::Ring(cloud.ring.as_deref().unwrap_or(&[])),
            "timestamp" | "time" if cloud.time_s.is_some() => {
                Source::Time(cloud.time_s.as_deref().unwrap_or(&[]))
            }
            name => {
                let label_key = if name == "label" { "class" } else { name };
                if let Some(c) = cloud.extra.get(name).filter(|c| c.components == f.count) {
                    Source::Extra(c)
                } else if let Some(l) = cloud.labels.get(label_key) {
                    Source::Label(l)
                } else {
                    Source::Zero
                }
            }
        })
        .collect();
    let positions: Vec<[f64; 3]> = cloud.positions.iter().collect();
    let scalar = |s: &Source<'_>, i: usize| -> f64 {
        match s {
            Source::Axis(a) => positions[i][*a],
            Source::Intensity(v) => v[i] as f64,
            Source::Ring(v) => v[i] as f64,
            Source::Time(v) => v[i],
            Source::Label(v) => v[i] as f64,
            Source::Extra(c) => c.values.get_f64(i * c.components),
            Source::Zero => 0.0,
        }
    };
    let mut header = String::new();
    header.push_str("# .PCD v0.7 - Point Cloud Data file format (written by hdmap)\nVERSION 0.7\n");
    let join = |g: &dyn Fn(&PcdField) -> String| fields.iter().map(g).collect::<Vec<_>>().join(" ");
    header.push_str(&format!("FIELDS {}\n", join(&|f| f.name.clone())));
    header.push_str(&format!("SIZE {}\n", join(&|f| f.kind.size().to_string())));
    header.push_str(&format!("TYPE {}\n", join(&|f| f.kind.letter().to_string())));
    header.push_str(&format!("COUNT {}\n", join(&|f| f.count.to_string())));
    header.push_str(&format!("WIDTH {n}\nHEIGHT 1\n"));
    let vp = options.viewpoint.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" ");
    header.push_str(&format!("VIEWPOINT {vp}\nPOINTS {n}\n"));
    let os = |source| IoError::Os { path: path.to_path_buf(), source };
    write_atomic(path, |w| {
        match options.encoding {
            PcdEncoding::Ascii => {
                header.push_str("DATA ascii\n");
                w.write_all(header.as_bytes()).map_err(os)?;
                let mut line = String::new();
                for i in 0..n {
                    line.clear();
                    for (f, s) in fields.iter().zip(&sources) {
                        for k in 0..f.count {
                            if !line.is_empty() {
                                line.push(' ');
                            }
                            match s {
                                Source::Extra(c) => line.push_str(&extra_text(c, i, k, f.kind)),
                                Source::Intensity(v) if f.kind == PcdType::F32 => {
                                    line.push_str(&v[i].to_string())
                                }
                                _ if k == 0 => line.push_str(&text_of(f.kind, scalar(s, i))),
                                _ => line.push('0'),
                            }
                        }
                    }
                    line.push('\n');
                    w.write_all(line.as_bytes()).map_err(os)?;
                }
            }
            PcdEncoding::Binary | PcdEncoding::BinaryCompressed => {
                let rec: usize = fields.iter().map(|f| f.kind.size() * f.count).sum();
                let mut buf = Vec::with_capacity(n * rec);
                let write_value =
                    |buf: &mut Vec<u8>, f: &PcdField, s: &Source<'_>, i: usize, k: usize| match s {
                        Source::Extra(c) => extra_bytes_le(c, i, k, f.kind, buf),
                        _ if k == 0 => put_le(buf, f.kind, scalar(s, i)),
                        _ => put_le(buf, f.kind, 0.0),
                    };
                if options.encoding == PcdEncoding::Binary {
                    for i in 0..n {
                        for (f, s) in fields.iter().zip(&sources) {
                            for k in 0..f.count {
                                write_value(&mut buf, f, s, i, k);
                            }
                        }
                    }
                    header.push_str("DATA binary\n");
                    w.write_all(header.as_bytes()).map_err(os)?;
                    w.write_all(&buf).map_err(os)?;
                } else {
                    for (f, s) in fields.iter().zip(&sources) {
                        for i in 0..n {
                            for k in 0..f.count {
                                write_value(&mut buf, f, s, i, k);
                            }
                        }
                    }
                    let compressed = lzf_compress_or_literal(&buf);
                    header.push_str("DATA binary_compressed\n");
                    w.write_all(header.as_bytes()).map_err(os)?;
                    let sizes = [(compressed.len() as u32).to_le_bytes(), (buf.len() as u32).to_le_bytes()];
                    w.write_all(&sizes.concat()).map_err(os)?;
                    w.write_all(&compressed).map_err(os)?;
                }
            }
        }
        Ok(())
    })
}

/// LZF-compresses `data`; when LZF cannot shrink it, emits a valid LZF stream made only of
/// literal runs (control byte `len-1` followed by up to 32 bytes).
fn lzf_compress_or_literal(data: &[u8]) -> Vec<u8> {
    if data.is_empty() {
        return Vec::new();
    }
    match lzf::compress(data) {
        Ok(c) => c,
        Err(_) => {
            let mut out = Vec::with_capacity(data.len() + data.len() / 32 + 1);
            for chunk in data.chunks(32) {
                out.push((chunk.len() - 1) as u8);
                out.extend_from_slice(chunk);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_lzf_fallback_decompresses() -> Result<(), String> {
        // Pseudo-random bytes do not compress; the fallback must still be valid LZF.
        let mut x = 0x1234_5678u32;
        let data: Vec<u8> = (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let c = lzf_compress_or_literal(&data);
        let d = lzf::decompress(&c, data.len()).map_err(|e| format!("{e:?}"))?;
        assert_eq!(d, data);
        Ok(())
    }
}
