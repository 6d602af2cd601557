//! kapture 1.1 (NAVER LABS): the sensor and reconstruction parts of a kapture folder, read and
//! written.
//!
//! ```text
//! sensors/sensors.txt            sensor_id, name, sensor_type, [sensor_params]+
//! sensors/rigs.txt               rig_id, sensor_id, qw, qx, qy, qz, tx, ty, tz   (sensor_from_rig)
//! sensors/trajectories.txt       timestamp, device_id, qw, qx, qy, qz, tx, ty, tz (device_from_world)
//! sensors/records_camera.txt     timestamp, device_id, image_path
//! sensors/records_lidar.txt      timestamp, device_id, point_cloud_path
//! reconstruction/keypoints/<type>/keypoints.txt      name, dtype, dsize  + <image_path>.kpt
//! reconstruction/descriptors/<type>/descriptors.txt  name, dtype, dsize, keypoints_type, metric_type
//!                                                    + <image_path>.desc
//! reconstruction/matches/<keypoints_type>/<image1>.overlapping/<image2>.matches  (f64 × 3 rows)
//! reconstruction/points3d.txt    X, Y, Z, R, G, B
//! reconstruction/observations.txt  point3d_id, keypoints_type, [image_path, feature_id]*
//! ```
//!
//! Every text file starts with `# kapture format: 1.1`; binary feature files are raw arrays of
//! `dtype` (little-endian), `dsize` values per feature. Cameras use computer-vision axes (x right,
//! y down, z forward); poses are stored as `device_from_world` (kapture's "world → device").
//! [`write_kapture`] builds the folder beside its destination and renames it into place, so a
//! killed export leaves no half-written kapture.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hdmap_core::nalgebra::{Isometry3, Quaternion, Translation3, UnitQuaternion};

use crate::IoError;

/// First line of every kapture text file.
pub const HEADER: &str = "# kapture format: 1.1";

/// A sensor of `sensors.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sensor {
    /// Identifier used by the other files.
    pub id: String,
    /// Free-form name (may be empty).
    pub name: String,
    /// `camera`, `lidar`, `gnss`, `depth`, …
    pub kind: String,
    /// Type-specific parameters, as written (cameras: model, width, height, model parameters).
    pub params: Vec<String>,
}

impl Sensor {
    /// A camera's model name (COLMAP's: `PINHOLE`, `OPENCV`, `RADIAL`, …), size and
    /// parameters; `None` for other sensors or unparsable parameters.
    pub fn camera(&self) -> Option<(String, u32, u32, Vec<f64>)> {
        if self.kind != "camera" || self.params.len() < 3 {
            return None;
        }
        let w = self.params[1].parse().ok()?;
        let h = self.params[2].parse().ok()?;
        let p = self.params[3..].iter().map(|v| v.parse::<f64>().ok()).collect::<Option<Vec<_>>>()?;
        Some((self.params[0].clone(), w, h, p))
    }
}

/// A timestamped record of a sensor (`records_camera.txt`, `records_lidar.txt`).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Timestamp (hdmap writes nanoseconds).
    pub timestamp: i64,
    /// Sensor id.
    pub device_id: String,
    /// Path under `sensors/records_data/`.
    pub path: String,
}

/// A pose of `trajectories.txt` or `rigs.txt`.
#[derive(Debug, Clone, PartialEq)]
pub struct PoseRecord {
    /// Timestamp (trajectories) — unused (0) for rigs.
    pub timestamp: i64,
    /// Device (trajectories) or rig (rigs) id.
    pub id: String,
    /// Sensor id (rigs only; empty for trajectories).
    pub sensor_id: String,
    /// `device_from_world` (trajectories) or `sensor_from_rig` (rigs).
    pub pose: Isometry3<f64>,
}

/// One feature type's per-image arrays (keypoints or descriptors).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureFiles {
    /// numpy dtype name: `float32`, `float64`, `uint8`, …
    pub dtype: String,
    /// Values per feature.
    pub dsize: usize,
    /// Descriptors only: the keypoint type they describe.
    pub keypoints_type: Option<String>,
    /// Descriptors only: `L2`, `hamming`, …
    pub metric_type: Option<String>,
    /// Raw little-endian array per image path.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl FeatureFiles {
    /// Bytes per value of the dtype (`None`: unknown dtype).
    pub fn value_bytes(&self) -> Option<usize> {
        dtype_bytes(&self.dtype)
    }

    /// Number of features of an image.
    pub fn count(&self, image: &str) -> usize {
        match (self.files.get(image), self.value_bytes()) {
            (Some(b), Some(v)) if self.dsize > 0 => b.len() / (v * self.dsize),
            _ => 0,
        }
    }

    /// An image's float32 array as rows of `dsize` values (`None` unless the dtype is float32).
    pub fn rows_f32(&self, image: &str) -> Option<Vec<Vec<f32>>> {
        if self.dtype != "float32" {
            return None;
        }
        let b = self.files.get(image)?;
        let vals: Vec<f32> =
            b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Some(vals.chunks(self.dsize.max(1)).map(<[f32]>::to_vec).collect())
    }
}

/// Observations of one 3D point in one keypoint type: (image path, keypoint index).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Row of `points3d.txt`.
    pub point3d_id: usize,
    /// Keypoint type.
    pub keypoints_type: String,
    /// Where it is seen.
    pub seen_in: Vec<(String, u32)>,
}

/// Matches of one keypoint type: per image pair, rows (index in image 1, index in image 2,
/// score).
pub type PairMatches = BTreeMap<(String, String), Vec<[f64; 3]>>;

/// The parts of a kapture folder hdmap reads and writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Kapture {
    /// `sensors.txt`.
    pub sensors: Vec<Sensor>,
    /// `rigs.txt` (`sensor_from_rig`).
    pub rigs: Vec<PoseRecord>,
    /// `trajectories.txt` (`device_from_world`).
    pub trajectories: Vec<PoseRecord>,
    /// `records_camera.txt`.
    pub records_camera: Vec<Record>,
    /// `records_lidar.txt`.
    pub records_lidar: Vec<Record>,
    /// Keypoints by type.
    pub keypoints: BTreeMap<String, FeatureFiles>,
    /// Descriptors by type.
    pub descriptors: BTreeMap<String, FeatureFiles>,
    /// Matches by keypoint type, then image pair: rows (index in image 1, index in image 2,
    /// score).
    pub matches: BTreeMap<String, PairMatches>,
    /// `points3d.txt`: X, Y, Z, R, G, B.
    pub points3d: Vec<[f64; 6]>,
    /// `observations.txt`.
    pub observations: Vec<Observation>,
}

fn dtype_bytes(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "uint8" | "int8" | "bool" => 1,
        "uint16" | "int16" | "float16" => 2,
        "uint32" | "int32" | "float32" => 4,
        "uint64" | "int64" | "float64" => 8,
        _ => return None,
    })
}

fn format_err(path: &Path, detail: impl Into<String>) -> IoError {
    IoError::Format { path: path.to_path_buf(), format: "kapture", detail: detail.into() }
}

/// The data rows of a kapture CSV file: comment lines dropped, fields split at commas and
/// trimmed. A missing file gives no rows; a file without the version line is refused.
fn table(path: &Path) -> Result<Vec<(usize, Vec<String>)>, IoError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(IoError::Os { path: path.to_path_buf(), source }),
    };
    let first = text.lines().next().unwrap_or("");
    let version = first.strip_prefix("# kapture format:").map(str::trim);
    match version {
        Some("1.1") => {}
        Some(v) => return Err(format_err(path, format!("kapture format {v}; hdmap reads 1.1"))),
        None => return Err(format_err(path, format!("first line is not `{HEADER}`"))),
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| (i + 1, l.split(',').map(|f| f.trim().to_string()).collect()))
        .collect())
}

fn parse<T: std::str::FromStr>(path: &Path, line: usize, what: &str, v: &str) -> Result<T, IoError> {
    v.parse().map_err(|_| format_err(path, format!("line {line}: {what} `{v}` is not a number")))
}

fn need(path: &Path, line: usize, row: &[String], n: usize) -> Result<(), IoError> {
    if row.len() < n {
        return Err(format_err(path, format!("line {line}: {} fields, expected at least {n}", row.len())));
    }
    Ok(())
}

fn pose_of(path: &Path, line: usize, f: &[String]) -> Result<Isometry3<f64>, IoError> {
    let v: Vec<f64> = f.iter().map(|s| parse(path, line, "pose value", s)).collect::<Result<_, _>>()?;
    if v.iter().any(|x| !x.is_finite()) {
        return Err(format_err(path, format!("line {line}: non-finite pose")));
    }
    let q = Quaternion::new(v[0], v[1], v[2], v[3]);
    if (q.norm() - 1.0).abs() > 1e-3 {
        return Err(format_err(path, format!("line {line}: quaternion norm {:.4}, expected 1", q.norm())));
    }
    // A quaternion written from a unit one is kept bit for bit (round trips are exact).
    let rotation = if (q.norm() - 1.0).abs() < 1e-12 {
        UnitQuaternion::new_unchecked(q)
    } else {
        UnitQuaternion::from_quaternion(q)
    };
    Ok(Isometry3::from_parts(Translation3::new(v[4], v[5], v[6]), rotation))
}

fn records(path: &Path) -> Result<Vec<Record>, IoError> {
    table(path)?
        .into_iter()
        .map(|(line, f)| {
            need(path, line, &f, 3)?;
            Ok(Record {
                timestamp: parse(path, line, "timestamp", &f[0])?,
                device_id: f[1].clone(),
                path: f[2].clone(),
            })
        })
        .collect()
}

/// Files under `dir` (recursively) ending in `ext`, as paths relative to `dir` with `/`.
fn files_with(dir: &Path, ext: &str) -> Result<Vec<String>, IoError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| IoError::Os { path: d.clone(), source })?;
        for e in entries {
            let p = e.map_err(|source| IoError::Os { path: d.clone(), source })?.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Some(rel) = p.to_str().and_then(|s| s.strip_suffix(ext)) {
                let rel =
                    Path::new(rel).strip_prefix(dir).map_err(|_| format_err(&p, "outside its folder"))?;
                out.push(
                    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/"),
                );
            }
        }
    }
    out.sort();
    Ok(out)
}

fn read_features(
    dir: &Path,
    listing: &str,
    ext: &str,
    descriptors: bool,
) -> Result<BTreeMap<String, FeatureFiles>, IoError> {
    let mut out = BTreeMap::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut types: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| IoError::Os { path: dir.to_path_buf(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    types.sort();
    for tdir in types {
        let list = tdir.join(listing);
        let rows = table(&list)?;
        let Some((line, f)) = rows.into_iter().next() else {
            return Err(format_err(&list, "missing or empty (name, dtype, dsize …)"));
        };
        need(&list, line, &f, if descriptors { 5 } else { 3 })?;
        let dsize: usize = parse(&list, line, "dsize", &f[2])?;
        let ff = FeatureFiles {
            dtype: f[1].clone(),
            dsize,
            keypoints_type: descriptors.then(|| f[3].clone()),
            metric_type: descriptors.then(|| f[4].clone()),
            files: BTreeMap::new(),
        };
        let vb =
            ff.value_bytes().ok_or_else(|| format_err(&list, format!("unknown dtype `{}`", ff.dtype)))?;
        let mut ff = ff;
        for image in files_with(&tdir, ext)? {
            let p = tdir.join(format!("{image}{ext}"));
            let bytes = std::fs::read(&p).map_err(|source| IoError::Os { path: p.clone(), source })?;
            if dsize == 0 || bytes.len() % (vb * dsize) != 0 {
                return Err(IoError::Truncated {
                    path: p,
                    detail: format!("{} bytes is not a whole number of {dsize} × {}", bytes.len(), ff.dtype),
                });
            }
            ff.files.insert(image, bytes);
        }
        let name = tdir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        out.insert(name, ff);
    }
    Ok(out)
}

/// Reads a kapture folder (the folder holding `sensors/` and `reconstruction/`). Files that are
/// absent are empty parts; malformed ones are refused, naming the file and line.
pub fn read_kapture(root: &Path) -> Result<Kapture, IoError> {
    let sensors_dir = root.join("sensors");
    if !sensors_dir.join("sensors.txt").is_file() {
        return Err(format_err(root, "no sensors/sensors.txt: not a kapture folder"));
    }
    let mut k = Kapture::default();
    let p = sensors_dir.join("sensors.txt");
    for (line, f) in table(&p)? {
        need(&p, line, &f, 3)?;
        k.sensors.push(Sensor {
            id: f[0].clone(),
            name: f[1].clone(),
            kind: f[2].clone(),
            params: f[3..].to_vec(),
        });
    }
    let p = sensors_dir.join("rigs.txt");
    for (line, f) in table(&p)? {
        need(&p, line, &f, 9)?;
        k.rigs.push(PoseRecord {
            timestamp: 0,
            id: f[0].clone(),
            sensor_id: f[1].clone(),
            pose: pose_of(&p, line, &f[2..9])?,
        });
    }
    let p = sensors_dir.join("trajectories.txt");
    for (line, f) in table(&p)? {
        need(&p, line, &f, 9)?;
        k.trajectories.push(PoseRecord {
            timestamp: parse(&p, line, "timestamp", &f[0])?,
            id: f[1].clone(),
            sensor_id: String::new(),
            pose: pose_of(&p, line, &f[2..9])?,
        });
    }
    k.records_camera = records(&sensors_dir.join("records_camera.txt"))?;
    k.records_lidar = records(&sensors_dir.join("records_lidar.txt"))?;
    let rec = root.join("reconstruction");
    k.keypoints = read_features(&rec.join("keypoints"), "keypoints.txt", ".kpt", false)?;
    k.descriptors = read_features(&rec.join("descriptors"), "descriptors.txt", ".desc", true)?;
    let mdir = rec.join("matches");
    if mdir.is_dir() {
        for kp_type in k.keypoints.keys() {
            let tdir = mdir.join(kp_type);
            if !tdir.is_dir() {
                continue;
            }
            let mut pairs = BTreeMap::new();
            for rel in files_with(&tdir, ".matches")? {
                let p = tdir.join(format!("{rel}.matches"));
                let (a, b) = rel
                    .split_once(".overlapping/")
                    .ok_or_else(|| format_err(&p, "not under an `<image>.overlapping` folder"))?;
                let bytes = std::fs::read(&p).map_err(|source| IoError::Os { path: p.clone(), source })?;
                if bytes.len() % 24 != 0 {
                    return Err(IoError::Truncated {
                        path: p,
                        detail: format!("{} bytes is not rows of 3 × f64", bytes.len()),
                    });
                }
                let rows: Vec<[f64; 3]> = bytes
                    .chunks_exact(24)
                    .map(|c| {
                        std::array::from_fn(|i| {
                            f64::from_le_bytes(c[8 * i..8 * i + 8].try_into().unwrap_or([0; 8]))
                        })
                    })
                    .collect();
                pairs.insert((a.to_string(), b.to_string()), rows);
            }
            k.matches.insert(kp_type.clone(), pairs);
        }
    }
    let p = rec.join("points3d.txt");
    for (line, f) in table(&p)? {
        need(&p, line, &f, 3)?;
        let mut v = [0.0f64; 6];
        for (i, s) in f.iter().take(6).enumerate() {
            v[i] = parse(&p, line, "coordinate", s)?;
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(format_err(&p, format!("line {line}: non-finite point")));
        }
        k.points3d.push(v);
    }
    let p = rec.join("observations.txt");
    for (line, f) in table(&p)? {
        need(&p, line, &f, 2)?;
        if f.len() % 2 != 0 {
            return Err(format_err(&p, format!("line {line}: image and feature ids must come in pairs")));
        }
        let seen_in = f[2..]
            .chunks(2)
            .map(|c| Ok((c[0].clone(), parse(&p, line, "feature id", &c[1])?)))
            .collect::<Result<Vec<_>, IoError>>()?;
        k.observations.push(Observation {
            point3d_id: parse(&p, line, "point3d id", &f[0])?,
            keypoints_type: f[1].clone(),
            seen_in,
        });
    }
    Ok(k)
}

fn pose_fields(p: &Isometry3<f64>) -> String {
    let q = p.rotation.quaternion();
    let t = p.translation.vector;
    format!("{}, {}, {}, {}, {}, {}, {}", q.w, q.i, q.j, q.k, t.x, t.y, t.z)
}

fn write_text(path: &Path, columns: &str, lines: impl Iterator<Item = String>) -> Result<(), IoError> {
    let mut s = format!("{HEADER}\n# {columns}\n");
    for l in lines {
        s.push_str(&l);
        s.push('\n');
    }
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|source| IoError::Os { path: d.to_path_buf(), source })?;
    }
    std::fs::write(path, s).map_err(|source| IoError::Os { path: path.to_path_buf(), source })
}

fn write_blob(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|source| IoError::Os { path: d.to_path_buf(), source })?;
    }
    std::fs::write(path, bytes).map_err(|source| IoError::Os { path: path.to_path_buf(), source })
}

/// A field that would break the comma-separated files.
fn check_field(root: &Path, what: &str, v: &str) -> Result<(), IoError> {
    if v.contains([',', '\n']) || v.starts_with('#') {
        return Err(format_err(
            root,
            format!("{what} `{v}` contains a comma or line break, or starts with #"),
        ));
    }
    Ok(())
}

/// Writes `k` as the kapture folder `root` (replaced if it exists). The folder is assembled
/// beside `root` and renamed into place.
pub fn write_kapture(root: &Path, k: &Kapture) -> Result<(), IoError> {
    write_kapture_with(root, k, &[])
}

/// [`write_kapture`] with `extra` files (name, bytes) at the folder's top level, written in the
/// same atomic step (a producer's own metadata beside the kapture files).
pub fn write_kapture_with(root: &Path, k: &Kapture, extra: &[(&str, &[u8])]) -> Result<(), IoError> {
    for (name, _) in extra {
        if name.is_empty()
            || name.contains(['/', '\\'])
            || name.starts_with('.')
            || *name == "sensors"
            || *name == "reconstruction"
        {
            return Err(format_err(
                root,
                format!("extra file `{name}` must be a plain file name beside sensors/ and reconstruction/"),
            ));
        }
    }
    for s in &k.sensors {
        for v in [&s.id, &s.name, &s.kind].into_iter().chain(&s.params) {
            check_field(root, "sensor field", v)?;
        }
    }
    for r in k.records_camera.iter().chain(&k.records_lidar) {
        check_field(root, "record field", &r.device_id)?;
        check_field(root, "record field", &r.path)?;
    }
    for r in k.rigs.iter().chain(&k.trajectories) {
        check_field(root, "pose id", &r.id)?;
        check_field(root, "pose id", &r.sensor_id)?;
    }
    for o in &k.observations {
        check_field(root, "keypoints type", &o.keypoints_type)?;
        for (img, _) in &o.seen_in {
            check_field(root, "image path", img)?;
        }
    }
    for ty in k.keypoints.keys().chain(k.descriptors.keys()).chain(k.matches.keys()) {
        check_field(root, "feature type", ty)?;
        if ty.is_empty() || ty.contains(['/', '\\']) || ty.starts_with('.') {
            return Err(format_err(root, format!("feature type `{ty}` must be a plain folder name")));
        }
    }
    // Feature file names become paths inside the folder: no way out of it.
    let names = k.keypoints.values().chain(k.descriptors.values()).flat_map(|f| f.files.keys());
    let pairs = k.matches.values().flat_map(|m| m.keys()).flat_map(|(a, b)| [a, b]);
    for n in names.chain(pairs) {
        if n.is_empty() || n.starts_with('/') || n.split('/').any(|c| c == ".." || c == ".") {
            return Err(format_err(root, format!("image path `{n}` must stay inside the kapture folder")));
        }
    }
    crate::fsutil::replace_dir_atomic(root, |t| {
        write_folder(t, k)?;
        for (name, bytes) in extra {
            let p = t.join(name);
            std::fs::write(&p, bytes).map_err(|source| IoError::Os { path: p.clone(), source })?;
        }
        Ok(())
    })
}

/// Writes the files of `k` into the empty folder `t`.
fn write_folder(t: &Path, k: &Kapture) -> Result<(), IoError> {
    let sensors = t.join("sensors");
    write_text(
        &sensors.join("sensors.txt"),
        "sensor_id, name, sensor_type, [sensor_params]+",
        k.sensors.iter().map(|s| {
            let mut f = vec![s.id.clone(), s.name.clone(), s.kind.clone()];
            f.extend(s.params.iter().cloned());
            f.join(", ")
        }),
    )?;
    if !k.rigs.is_empty() {
        write_text(
            &sensors.join("rigs.txt"),
            "rig_id, sensor_id, qw, qx, qy, qz, tx, ty, tz",
            k.rigs.iter().map(|r| format!("{}, {}, {}", r.id, r.sensor_id, pose_fields(&r.pose))),
        )?;
    }
    if !k.trajectories.is_empty() {
        write_text(
            &sensors.join("trajectories.txt"),
            "timestamp, device_id, qw, qx, qy, qz, tx, ty, tz",
            k.trajectories.iter().map(|r| format!("{}, {}, {}", r.timestamp, r.id, pose_fields(&r.pose))),
        )?;
    }
    for (file, column, recs) in [
        ("records_camera.txt", "image_path", &k.records_camera),
        ("records_lidar.txt", "point_cloud_path", &k.records_lidar),
    ] {
        if !recs.is_empty() {
            write_text(
                &sensors.join(file),
                &format!("timestamp, device_id, {column}"),
                recs.iter().map(|r| format!("{}, {}, {}", r.timestamp, r.device_id, r.path)),
            )?;
        }
    }
    let rec = t.join("reconstruction");
    for (dir, listing, ext, set) in [
        ("keypoints", "keypoints.txt", ".kpt", &k.keypoints),
        ("descriptors", "descriptors.txt", ".desc", &k.descriptors),
    ] {
        for (ty, ff) in set {
            let d = rec.join(dir).join(ty);
            let (columns, row) = match (&ff.keypoints_type, &ff.metric_type) {
                (Some(kt), Some(m)) => (
                    "name, dtype, dsize, keypoints_type, metric_type",
                    format!("{ty}, {}, {}, {kt}, {m}", ff.dtype, ff.dsize),
                ),
                _ => ("name, dtype, dsize", format!("{ty}, {}, {}", ff.dtype, ff.dsize)),
            };
            write_text(&d.join(listing), columns, std::iter::once(row))?;
            for (image, bytes) in &ff.files {
                write_blob(&d.join(format!("{image}{ext}")), bytes)?;
            }
        }
    }
    for (ty, pairs) in &k.matches {
        for ((a, b), rows) in pairs {
            let bytes: Vec<u8> = rows.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
            write_blob(
                &rec.join("matches").join(ty).join(format!("{a}.overlapping")).join(format!("{b}.matches")),
                &bytes,
            )?;
        }
    }
    if !k.points3d.is_empty() {
        write_text(
            &rec.join("points3d.txt"),
            "X, Y, Z, R, G, B",
            k.points3d.iter().map(|p| p.iter().map(|v| format!("{v:.10}")).collect::<Vec<_>>().join(",")),
        )?;
    }
    if !k.observations.is_empty() {
        write_text(
            &rec.join("observations.txt"),
            "point3d_id, keypoints_type, [image_path, feature_id]*",
            k.observations.iter().map(|o| {
                let mut f = vec![o.point3d_id.to_string(), o.keypoints_type.clone()];
                for (img, id) in &o.seen_in {
                    f.push(img.clone());
                    f.push(id.to_string());
                }
                f.join(", ")
            }),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_files_are_refused_naming_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = dir.path().join("sensors");
        std::fs::create_dir_all(&s).expect("mkdir");
        // No version line.
        std::fs::write(s.join("sensors.txt"), "cam, , camera, PINHOLE, 640, 480, 500, 500, 320, 240\n")
            .expect("write");
        let e = read_kapture(dir.path()).expect_err("no header").to_string();
        assert!(e.contains("sensors.txt") && e.contains("kapture format"), "{e}");
        std::fs::write(
            s.join("sensors.txt"),
            format!("{HEADER}\ncam, , camera, PINHOLE, 640, 480, 500, 500, 320, 240\n"),
        )
        .expect("write");
        // A quaternion that is not a rotation, then a short line.
        std::fs::write(s.join("trajectories.txt"), format!("{HEADER}\n0, cam, 2, 0, 0, 0, 1, 2, 3\n"))
            .expect("write");
        let e = read_kapture(dir.path()).expect_err("bad quaternion").to_string();
        assert!(e.contains("trajectories.txt") && e.contains("line 2") && e.contains("quaternion"), "{e}");
        std::fs::write(s.join("trajectories.txt"), format!("{HEADER}\n0, cam, 1, 0, 0\n")).expect("write");
        let e = read_kapture(dir.path()).expect_err("short").to_string();
        assert!(e.contains("line 2") && e.contains("5 fields"), "{e}");
        std::fs::remove_file(s.join("trajectories.txt")).expect("rm");
        // A keypoint file that is not whole rows.
        let kp = dir.path().join("reconstruction/keypoints/orb");
        std::fs::create_dir_all(&kp).expect("mkdir");
        std::fs::write(kp.join("keypoints.txt"), format!("{HEADER}\norb, float32, 4\n")).expect("write");
        std::fs::write(kp.join("a.png.kpt"), [0u8; 20]).expect("write");
        let e = read_kapture(dir.path()).expect_err("truncated").to_string();
        assert!(e.contains("a.png.kpt") && e.contains("20 bytes"), "{e}");
        // Not a kapture folder at all.
        assert!(read_kapture(&dir.path().join("nothing")).is_err());
    }

    #[test]
    fn write_refuses_fields_that_would_break_the_csv() {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = Kapture {
            sensors: vec![Sensor {
                id: "a,b".into(),
                name: String::new(),
                kind: "camera".into(),
                params: vec![],
            }],
            ..Kapture::default()
        };
        let out = dir.path().join("k");
        assert!(write_kapture(&out, &k).is_err());
        assert!(!out.exists(), "nothing half-written");
    }
}
