//! Trajectories: hdmap pose CSV (with header), TUM, KITTI poses (optionally stamped), and
//! NovAtel-style INS CSV.
//!
//! * **pose CSV** — header `stamp_ns,x,y,z,qw,qx,qy,qz` (also accepted: `timestamp`/`time` in
//!   seconds instead of `stamp_ns`), optionally preceded by a metadata comment
//!   `# hdmap-trajectory target=world source=vehicle epsg=5186 origin=x,y,z vertical_datum=egm2008`.
//! * **TUM** — `timestamp tx ty tz qx qy qz qw` per line, seconds, `#` comments.
//! * **KITTI poses** — 12 numbers per line (3×4 row-major `[R|t]`), stamps from a separate
//!   list; **stamped 3×4** — a stamp (seconds or `YYYY-MM-DD-HH-MM-SS-mmm`) then the 12 numbers,
//!   as in the PJLab / NovAtel pose files.
//! * **INS CSV** — NovAtel-style: `gps_time,x,y,z,ve,vn,vu,roll,pitch,yaw` (+ optional
//!   `std_*` columns); attitude in radians with yaw as azimuth (clockwise from north) and the
//!   INS body frame x right, y forward, z up: `world_from_gnss = Rz(-yaw)·Rx(pitch)·Ry(roll)`.
//!
//! Date-time stamps carry no time zone in these files; they are converted as if UTC and the
//! resulting `stamp_ns` is a label, consistent within one drive.

use std::path::Path;

use hdmap_core::nalgebra::{
    Isometry3, Matrix3, Quaternion, Rotation3, Translation3, UnitQuaternion, Vector3,
};
use hdmap_core::time::{civil_to_ns, ns_to_seconds, seconds_to_ns};
use hdmap_core::{FrameId, GeoOrigin, StampedPose, Trajectory, VerticalDatum};
use serde::Serialize;

use crate::IoError;
use crate::fsutil::{check_input_file, write_bytes_atomic};

/// Trajectory file kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrajectoryFormat {
    /// hdmap pose CSV with header.
    PoseCsv,
    /// TUM text.
    Tum,
    /// KITTI 3×4 poses without stamps.
    KittiPoses,
    /// A stamp followed by a 3×4 pose per line.
    Stamped3x4,
    /// NovAtel-style INS CSV.
    InsCsv,
}

/// An INS solution: the pose trajectory (`world_from_gnss`) plus velocities and, when the file
/// has them, standard deviations.
#[derive(Debug, Clone, PartialEq)]
pub struct InsSolution {
    /// `world_from_gnss` poses.
    pub trajectory: Trajectory,
    /// Velocity east, north, up in m/s, one per pose.
    pub velocity_enu_mps: Vec<[f64; 3]>,
    /// Position standard deviation (east, north, up) in metres, one per pose, if present.
    pub position_std_m: Option<Vec<[f64; 3]>>,
    /// Attitude standard deviation (roll, pitch, yaw) in radians, one per pose, if present.
    pub attitude_std_rad: Option<Vec<[f64; 3]>>,
}

fn fmt_err(path: &Path, format: &'static str, detail: impl Into<String>) -> IoError {
    IoError::Format { path: path.to_path_buf(), format, detail: detail.into() }
}

/// Parses a stamp: integer nanoseconds are not accepted here (ambiguous); seconds as a float,
/// or `YYYY-MM-DD-HH-MM-SS-mmm` / `YYYY-MM-DD-HH-MM-SS.fff`.
pub fn parse_stamp(s: &str) -> Option<i64> {
    if let Ok(v) = s.parse::<f64>() {
        return v.is_finite().then(|| seconds_to_ns(v));
    }
    let parts: Vec<&str> = s.split(['-', '_', 'T', ':', ' ']).collect();
    if parts.len() < 6 {
        return None;
    }
    let year: i64 = parts[0].parse().ok()?;
    let month: u32 = parts[1].parse().ok()?;
    let day: u32 = parts[2].parse().ok()?;
    let hour: u32 = parts[3].parse().ok()?;
    let minute: u32 = parts[4].parse().ok()?;
    let (second, mut nanos): (u32, u32) = match parts[5].split_once('.') {
        Some((s, frac)) => {
            let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
            (s.parse().ok()?, digits.parse().ok()?)
        }
        None => (parts[5].parse().ok()?, 0),
    };
    if let Some(ms) = parts.get(6) {
        let digits: String = ms.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = digits.parse().ok()?;
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(civil_to_ns(year, month, day, hour, minute, second, nanos))
}

fn pose_from_3x4(v: &[f64]) -> Isometry3<f64> {
    let m = Matrix3::new(v[0], v[1], v[2], v[4], v[5], v[6], v[8], v[9], v[10]);
    // Re-orthonormalise: text files carry 9 rounded digits.
    let r = Rotation3::from_matrix_eps(&m, 1e-12, 100, Rotation3::identity());
    Isometry3::from_parts(Translation3::new(v[3], v[7], v[11]), UnitQuaternion::from_rotation_matrix(&r))
}

/// The INS attitude convention: `world_from_gnss = Rz(-yaw)·Rx(pitch)·Ry(roll)` with yaw the
/// azimuth clockwise from north, world ENU, body x right / y forward / z up.
pub fn ins_rotation(roll: f64, pitch: f64, yaw: f64) -> UnitQuaternion<f64> {
    UnitQuaternion::from_axis_angle(&Vector3::z_axis(), -yaw)
        * UnitQuaternion::from_axis_angle(&Vector3::x_axis(), pitch)
        * UnitQuaternion::from_axis_angle(&Vector3::y_axis(), roll)
}

/// Inverse of [`ins_rotation`]: (roll, pitch, yaw) of a `world_from_gnss` rotation.
pub fn ins_angles(q: &UnitQuaternion<f64>) -> (f64, f64, f64) {
    let m = q.to_rotation_matrix();
    let m = m.matrix();
    // R = Rz(-y) Rx(p) Ry(r): m[(2,1)] = sin p; m[(2,0)] = -cos p sin r; m[(2,2)] = cos p cos r;
    // m[(0,1)] = sin(y) cos p; m[(1,1)] = cos(y) cos p.
    let pitch = m[(2, 1)].clamp(-1.0, 1.0).asin();
    let roll = (-m[(2, 0)]).atan2(m[(2, 2)]);
    let yaw = m[(0, 1)].atan2(m[(1, 1)]);
    (roll, pitch, yaw)
}

fn read_text(path: &Path) -> Result<String, IoError> {
    check_input_file(path)?;
    let bytes = std::fs::read(path).map_err(|source| IoError::Os { path: path.to_path_buf(), source })?;
    String::from_utf8(bytes).map_err(|_| fmt_err(path, "trajectory", "not UTF-8 text"))
}

fn numbers(path: &Path, format: &'static str, line_no: usize, toks: &[&str]) -> Result<Vec<f64>, IoError> {
    toks.iter()
        .map(|t| {
            t.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| fmt_err(path, format, format!("line {line_no}: `{t}` is not a finite number")))
        })
        .collect()
}

fn build(
    path: &Path,
    target: FrameId,
    source: FrameId,
    poses: Vec<StampedPose>,
) -> Result<Trajectory, IoError> {
    Trajectory::new(target, source, poses)
        .map_err(|source| IoError::Invalid { path: path.to_path_buf(), source })
}

/// Guesses the format from the extension and first data line.
pub fn detect_format(path: &Path) -> Result<TrajectoryFormat, IoError> {
    let text = read_text(path)?;
    let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or("");
    let lower = first.to_ascii_lowercase();
    if lower.contains(',') && lower.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        let cols: Vec<&str> = lower.split(',').map(str::trim).collect();
        if cols.contains(&"qw") {
            return Ok(TrajectoryFormat::PoseCsv);
        }
        if cols.contains(&"yaw") || cols.iter().any(|c| c.starts_with("yaw")) {
            return Ok(TrajectoryFormat::InsCsv);
        }
        return Err(fmt_err(
            path,
            "trajectory",
            format!("CSV header `{first}` is neither a pose CSV nor an INS CSV"),
        ));
    }
    let toks: Vec<&str> = first.split_whitespace().collect();
    match toks.len() {
        8 => Ok(TrajectoryFormat::Tum),
        12 => Ok(TrajectoryFormat::KittiPoses),
        13 => Ok(TrajectoryFormat::Stamped3x4),
        0 => Err(IoError::Empty { path: path.to_path_buf() }),
        n => Err(fmt_err(
            path,
            "trajectory",
            format!("first line has {n} values; TUM has 8, KITTI 12, stamped 3×4 13"),
        )),
    }
}

/// Reads TUM `timestamp tx ty tz qx qy qz qw`.
pub fn read_tum(path: &Path, target: FrameId, source: FrameId) -> Result<Trajectory, IoError> {
    let text = read_text(path)?;
    let mut poses = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.len() != 8 {
            return Err(fmt_err(path, "TUM", format!("line {}: {} values, expected 8", i + 1, toks.len())));
        }
        let v = numbers(path, "TUM", i + 1, &toks)?;
        let q = Quaternion::new(v[7], v[4], v[5], v[6]);
        if (q.norm() - 1.0).abs() > 1e-3 {
            return Err(fmt_err(
                path,
                "TUM",
                format!("line {}: quaternion norm {:.6} is not 1", i + 1, q.norm()),
            ));
        }
        poses.push(StampedPose {
            stamp_ns: seconds_to_ns(v[0]),
            target_from_source: Isometry3::from_parts(
                Translation3::new(v[1], v[2], v[3]),
                UnitQuaternion::from_quaternion(q),
            ),
        });
    }
    build(path, target, source, poses)
}

/// Writes TUM, atomically.
pub fn write_tum(path: &Path, traj: &Trajectory) -> Result<(), IoError> {
    let mut s = String::from("# timestamp tx ty tz qx qy qz qw\n");
    for p in &traj.poses {
        let t = p.target_from_source.translation.vector;
        let q = p.target_from_source.rotation.coords;
        s.push_str(&format!(
            "{:.9} {} {} {} {} {} {} {}\n",
            ns_to_seconds(p.stamp_ns),
            t.x,
            t.y,
            t.z,
            q.x,
            q.y,
            q.z,
            q.w
        ));
    }
    write_bytes_atomic(path, s.as_bytes())
}

/// Reads KITTI poses (12 numbers per line) with the given stamps (one per line), or a stamped
/// 3×4 file (13 tokens per line) when `stamps_ns` is `None`.
pub fn read_3x4(
    path: &Path,
    stamps_ns: Option<&[i64]>,
    target: FrameId,
    source: FrameId,
) -> Result<Trajectory, IoError> {
    let text = read_text(path)?;
    let mut poses = Vec::new();
    let format = if stamps_ns.is_some() { "KITTI poses" } else { "stamped 3x4 poses" };
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let toks: Vec<&str> = line.split_whitespace().collect();
        let (stamp_ns, vals) = match stamps_ns {
            Some(stamps) => {
                if toks.len() != 12 {
                    return Err(fmt_err(
                        path,
                        format,
                        format!("line {}: {} values, expected 12", i + 1, toks.len()),
                    ));
                }
                let k = poses.len();
                let stamp = *stamps.get(k).ok_or_else(|| {
                    fmt_err(path, format, format!("more poses than the {} stamps given", stamps.len()))
                })?;
                (stamp, &toks[..])
            }
            None => {
                if toks.len() != 13 {
                    return Err(fmt_err(
                        path,
                        format,
                        format!("line {}: {} values, expected 13", i + 1, toks.len()),
                    ));
                }
                let stamp = parse_stamp(toks[0]).ok_or_else(|| {
                    fmt_err(path, format, format!("line {}: bad stamp `{}`", i + 1, toks[0]))
                })?;
                (stamp, &toks[1..])
            }
        };
        let v = numbers(path, format, i + 1, vals)?;
        let m = Matrix3::new(v[0], v[1], v[2], v[4], v[5], v[6], v[8], v[9], v[10]);
        let det = m.determinant();
        if (det - 1.0).abs() > 1e-3 {
            return Err(fmt_err(
                path,
                format,
                format!("line {}: rotation determinant {det:.6} is not 1", i + 1),
            ));
        }
        poses.push(StampedPose { stamp_ns, target_from_source: pose_from_3x4(&v) });
    }
    if let Some(stamps) = stamps_ns
        && stamps.len() != poses.len()
    {
        return Err(fmt_err(path, format, format!("{} poses but {} stamps", poses.len(), stamps.len())));
    }
    build(path, target, source, poses)
}

/// Reads an hdmap pose CSV. The metadata comment, when present, sets frames and origin;
/// without it the frames are `fallback_target`/`fallback_source` and the origin is unknown.
pub fn read_pose_csv(
    path: &Path,
    fallback_target: FrameId,
    fallback_source: FrameId,
) -> Result<Trajectory, IoError> {
    let text = read_text(path)?;
    let (mut target, mut source, mut origin) = (fallback_target, fallback_source, None);
    let mut epsg = None;
    let mut origin_xyz = None;
    let mut datum = None;
    for line in text.lines().take_while(|l| l.starts_with('#')) {
        if let Some(rest) = line.strip_prefix("# hdmap-trajectory") {
            for kv in rest.split_whitespace() {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| fmt_err(path, "pose CSV", format!("bad metadata `{kv}`")))?;
                let bad = || fmt_err(path, "pose CSV", format!("bad metadata value `{kv}`"));
                match k {
                    "target" => target = v.parse().map_err(|_| bad())?,
                    "source" => source = v.parse().map_err(|_| bad())?,
                    "epsg" => epsg = Some(v.parse::<u32>().map_err(|_| bad())?),
                    "origin" => {
                        let o: Vec<f64> = v
                            .split(',')
                            .map(|x| x.parse::<f64>())
                            .collect::<Result<_, _>>()
                            .map_err(|_| bad())?;
                        if o.len() != 3 {
                            return Err(bad());
                        }
                        origin_xyz = Some([o[0], o[1], o[2]]);
                    }
                    "vertical_datum" => datum = Some(v.parse::<VerticalDatum>().map_err(|_| bad())?),
                    _ => return Err(fmt_err(path, "pose CSV", format!("unknown metadata key `{k}`"))),
                }
            }
        }
    }
    if let (Some(epsg), Some(o), Some(d)) = (epsg, origin_xyz, datum) {
        origin = Some(
            GeoOrigin::new(epsg, o, d)
                .map_err(|source| IoError::Invalid { path: path.to_path_buf(), source })?,
        );
    }
    let mut rdr =
        csv::ReaderBuilder::new().comment(Some(b'#')).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| fmt_err(path, "pose CSV", e.to_string()))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let idx = |name: &str| headers.iter().position(|h| h == name);
    let need = |name: &str| idx(name).ok_or_else(|| fmt_err(path, "pose CSV", format!("no `{name}` column")));
    let (ix, iy, iz) = (need("x")?, need("y")?, need("z")?);
    let (iqw, iqx, iqy, iqz) = (need("qw")?, need("qx")?, need("qy")?, need("qz")?);
    let stamp_col = idx("stamp_ns")
        .map(|i| (i, true))
        .or_else(|| idx("timestamp").or_else(|| idx("time")).map(|i| (i, false)));
    let (it, is_ns) =
        stamp_col.ok_or_else(|| fmt_err(path, "pose CSV", "no `stamp_ns`, `timestamp` or `time` column"))?;
    let mut poses = Vec::new();
    for (row, rec) in rdr.records().enumerate() {
        let line = row + 2;
        let rec = rec.map_err(|e| fmt_err(path, "pose CSV", format!("line {line}: {e}")))?;
        let get = |i: usize| -> Result<f64, IoError> {
            rec.get(i).and_then(|s| s.parse::<f64>().ok()).filter(|v| v.is_finite()).ok_or_else(|| {
                fmt_err(path, "pose CSV", format!("line {line}: column {} is not a finite number", i + 1))
            })
        };
        let stamp_ns = if is_ns {
            rec.get(it).and_then(|s| s.parse::<i64>().ok()).ok_or_else(|| {
                fmt_err(path, "pose CSV", format!("line {line}: stamp_ns is not an integer"))
            })?
        } else {
            seconds_to_ns(get(it)?)
        };
        let q = Quaternion::new(get(iqw)?, get(iqx)?, get(iqy)?, get(iqz)?);
        if (q.norm() - 1.0).abs() > 1e-3 {
            return Err(fmt_err(
                path,
                "pose CSV",
                format!("line {line}: quaternion norm {:.6} is not 1", q.norm()),
            ));
        }
        poses.push(StampedPose {
            stamp_ns,
            target_from_source: Isometry3::from_parts(
                Translation3::new(get(ix)?, get(iy)?, get(iz)?),
                UnitQuaternion::from_quaternion(q),
            ),
        });
    }
    let mut traj = build(path, target, source, poses)?;
    traj.origin = origin;
    Ok(traj)
}

/// Writes an hdmap pose CSV with its metadata comment, atomically.
pub fn write_pose_csv(path: &Path, traj: &Trajectory) -> Result<(), IoError> {
    let mut s = format!("# hdmap-trajectory target={} source={}", traj.target, traj.source);
    if let Some(o) = &traj.origin {
        s.push_str(&format!(
            " epsg={} origin={},{},{} vertical_datum={}",
            o.epsg, o.origin[0], o.origin[1], o.origin[2], o.vertical_datum
        ));
    }
    s.push_str("\nstamp_ns,x,y,z,qw,qx,qy,qz\n");
    for p in &traj.poses {
        let t = p.target_from_source.translation.vector;
        let q = p.target_from_source.rotation.coords;
        s.push_str(&format!("{},{},{},{},{},{},{},{}\n", p.stamp_ns, t.x, t.y, t.z, q.w, q.x, q.y, q.z));
    }
    write_bytes_atomic(path, s.as_bytes())
}

/// Reads a NovAtel-style INS CSV (see the module docs). Column names are matched
/// case-insensitively; the velocity columns may carry units in the name (`ve(m/s)`).
pub fn read_ins_csv(path: &Path, origin: Option<GeoOrigin>) -> Result<InsSolution, IoError> {
    const F: &str = "INS CSV";
    let text = read_text(path)?;
    let mut rdr =
        csv::ReaderBuilder::new().comment(Some(b'#')).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| fmt_err(path, F, e.to_string()))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    // "ve(m/3)" in the PJLab file: match on the name before any unit suffix.
    let base = |h: &str| h.split('(').next().unwrap_or(h).trim().to_string();
    let idx = |name: &str| headers.iter().position(|h| base(h) == name);
    let need = |name: &str| idx(name).ok_or_else(|| fmt_err(path, F, format!("no `{name}` column")));
    let it = idx("stamp_ns").or_else(|| idx("gps_time")).or_else(|| idx("timestamp"));
    let it = it.ok_or_else(|| fmt_err(path, F, "no `stamp_ns`, `gps_time` or `timestamp` column"))?;
    let stamp_is_ns = base(&headers[it]) == "stamp_ns";
    let cols: Vec<usize> = ["x", "y", "z", "ve", "vn", "vu", "roll", "pitch", "yaw"]
        .iter()
        .map(|n| need(n))
        .collect::<Result<_, _>>()?;
    let std_pos: Option<Vec<usize>> = ["std_x", "std_y", "std_z"].iter().map(|n| idx(n)).collect();
    let std_att: Option<Vec<usize>> = ["std_roll", "std_pitch", "std_yaw"].iter().map(|n| idx(n)).collect();
    let (mut poses, mut vel, mut spos, mut satt) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (row, rec) in rdr.records().enumerate() {
        let line = row + 2;
        let rec = rec.map_err(|e| fmt_err(path, F, format!("line {line}: {e}")))?;
        let get = |i: usize| -> Result<f64, IoError> {
            rec.get(i).and_then(|s| s.parse::<f64>().ok()).filter(|v| v.is_finite()).ok_or_else(|| {
                fmt_err(
                    path,
                    F,
                    format!(
                        "line {line}: `{}` = `{}` is not a finite number",
                        headers[i],
                        rec.get(i).unwrap_or("")
                    ),
                )
            })
        };
        let raw_stamp = rec.get(it).unwrap_or("");
        let stamp_ns = if stamp_is_ns { raw_stamp.parse::<i64>().ok() } else { parse_stamp(raw_stamp) }
            .ok_or_else(|| fmt_err(path, F, format!("line {line}: bad time `{raw_stamp}`")))?;
        let v: Vec<f64> = cols.iter().map(|&i| get(i)).collect::<Result<_, _>>()?;
        poses.push(StampedPose {
            stamp_ns,
            target_from_source: Isometry3::from_parts(
                Translation3::new(v[0], v[1], v[2]),
                ins_rotation(v[6], v[7], v[8]),
            ),
        });
        vel.push([v[3], v[4], v[5]]);
        if let Some(c) = &std_pos {
            spos.push([get(c[0])?, get(c[1])?, get(c[2])?]);
        }
        if let Some(c) = &std_att {
            satt.push([get(c[0])?, get(c[1])?, get(c[2])?]);
        }
    }
    let mut trajectory = build(path, FrameId::World, FrameId::Gnss, poses)?;
    trajectory.origin = origin;
    Ok(InsSolution {
        trajectory,
        velocity_enu_mps: vel,
        position_std_m: std_pos.map(|_| spos),
        attitude_std_rad: std_att.map(|_| satt),
    })
}

/// Writes an INS CSV (`stamp_ns,x,y,z,ve,vn,vu,roll,pitch,yaw[,std_*]`), atomically.
pub fn write_ins_csv(path: &Path, ins: &InsSolution) -> Result<(), IoError> {
    let n = ins.trajectory.poses.len();
    let bad_len = |what: &str, got: usize| IoError::Format {
        path: path.to_path_buf(),
        format: "INS CSV",
        detail: format!("{what} has {got} rows, trajectory {n}"),
    };
    if ins.velocity_enu_mps.len() != n {
        return Err(bad_len("velocity", ins.velocity_enu_mps.len()));
    }
    let mut s = String::from("stamp_ns,x,y,z,ve,vn,vu,roll,pitch,yaw");
    if let Some(v) = &ins.position_std_m {
        if v.len() != n {
            return Err(bad_len("position std", v.len()));
        }
        s.push_str(",std_x,std_y,std_z");
    }
    if let Some(v) = &ins.attitude_std_rad {
        if v.len() != n {
            return Err(bad_len("attitude std", v.len()));
        }
        s.push_str(",std_roll,std_pitch,std_yaw");
    }
    s.push('\n');
    for (i, p) in ins.trajectory.poses.iter().enumerate() {
        let t = p.target_from_source.translation.vector;
        let (roll, pitch, yaw) = ins_angles(&p.target_from_source.rotation);
        let v = ins.velocity_enu_mps[i];
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{}",
            p.stamp_ns, t.x, t.y, t.z, v[0], v[1], v[2], roll, pitch, yaw
        ));
        if let Some(sd) = &ins.position_std_m {
            s.push_str(&format!(",{},{},{}", sd[i][0], sd[i][1], sd[i][2]));
        }
        if let Some(sd) = &ins.attitude_std_rad {
            s.push_str(&format!(",{},{},{}", sd[i][0], sd[i][1], sd[i][2]));
        }
        s.push('\n');
    }
    write_bytes_atomic(path, s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ins_angles_invert_ins_rotation() {
        for &(r, p, y) in &[(0.01, -0.02, 2.35), (-0.3, 0.4, -3.0), (0.0, 0.0, 0.0), (0.2, -0.1, 1.0)] {
            let (r2, p2, y2) = ins_angles(&ins_rotation(r, p, y));
            assert!((r - r2).abs() < 1e-12 && (p - p2).abs() < 1e-12 && (y - y2).abs() < 1e-12);
        }
        // Yaw is an azimuth: 90° points the forward (y) axis east.
        let fwd = ins_rotation(0.0, 0.0, std::f64::consts::FRAC_PI_2) * Vector3::y();
        assert!((fwd - Vector3::x()).norm() < 1e-12);
    }

    #[test]
    fn stamps_parse() {
        assert_eq!(parse_stamp("2021-10-26-16-21-29-468"), Some(1_635_265_289_468_000_000));
        assert_eq!(parse_stamp("2021-10-26T16:21:29.468"), Some(1_635_265_289_468_000_000));
        assert_eq!(parse_stamp("12.5"), Some(12_500_000_000));
        assert_eq!(parse_stamp("2021-13-26-16-21-29-468"), None);
        assert_eq!(parse_stamp("nan"), None);
    }
}
