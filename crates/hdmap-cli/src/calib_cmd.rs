//! `hdmap calibrate camera-lidar`: a camera–LiDAR extrinsic from images and the scans taken
//! with them — target-based with `--board` (chessboard in every image, covariance written), or
//! targetless on ordinary street scenes — written back into a rig file.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hdmap_calib::camlidar::{self, ScenePair, TargetlessConfig};
use hdmap_calib::target;
use hdmap_core::camera::{CameraIntrinsics, Distortion};
use hdmap_core::{Extrinsic, FrameId};

/// Arguments of `hdmap calibrate camera-lidar`.
#[derive(clap::Args)]
pub struct CameraLidarArgs {
    /// Rig file with the guess: the camera's and the LiDAR's transforms (direct, or both to
    /// the vehicle frame).
    #[arg(long)]
    pub rig: PathBuf,
    /// Camera frame number (`camera<N>` in the rig).
    #[arg(long, default_value_t = 0)]
    pub camera: u8,
    /// LiDAR frame number (`lidar<N>` in the rig).
    #[arg(long, default_value_t = 0)]
    pub lidar: u8,
    /// Camera intrinsics: the JSON of `hdmap calibrate intrinsics --json`
    /// (`{"model","fx","fy","cx","cy","dist":[...]}`) or an OpenCalib `*-intrinsic.json`.
    #[arg(long)]
    pub intrinsics: PathBuf,
    /// An image; give one `--scan` per `--image`, in the same order.
    #[arg(long = "image", required = true)]
    pub images: Vec<PathBuf>,
    /// The LiDAR scan (PCD, KITTI .bin, LAS/LAZ) taken with the image of the same position.
    #[arg(long = "scan", required = true)]
    pub scans: Vec<PathBuf>,
    /// Use a chessboard seen in every image (inner corners, e.g. 9x6) instead of the targetless
    /// refinement: board pose from the image, board points from the scan; writes a covariance.
    #[arg(long)]
    pub board: Option<String>,
    /// Board square size, m (with --board).
    #[arg(long, default_value_t = 0.1)]
    pub square_m: f64,
    /// With --board: how far (m) the guess may misplace the board.
    #[arg(long, default_value_t = 0.3)]
    pub board_margin_m: f64,
    /// Refinement settings (TOML, keys of `TargetlessConfig`); defaults otherwise.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where to write the updated rig.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the LiDAR points over each image before/after into this folder.
    #[arg(long)]
    pub overlay: Option<PathBuf>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OurIntrinsics {
    /// `pinhole` (Brown–Conrady k1 k2 p1 p2 [k3]) or `fisheye` (Kannala–Brandt k1..k4).
    #[serde(default)]
    model: Option<String>,
    fx: f64,
    fy: f64,
    cx: f64,
    cy: f64,
    dist: Vec<f64>,
    /// Written by `hdmap calibrate intrinsics --json`; accepted, not needed here.
    #[serde(default, rename = "rms_px")]
    _rms_px: Option<f64>,
    #[serde(default, rename = "views_used")]
    _views_used: Option<usize>,
}

/// Intrinsics from either JSON flavour, sized to the image.
fn read_intrinsics(path: &Path, size: (u32, u32)) -> anyhow::Result<CameraIntrinsics> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    if v.get("fx").is_some() {
        let o: OurIntrinsics =
            serde_json::from_value(v).with_context(|| format!("{}: intrinsics JSON", path.display()))?;
        let d = &o.dist;
        let distortion = match (o.model.as_deref(), d.len()) {
            (_, 0) => Distortion::None,
            (Some("fisheye"), 4) => Distortion::KannalaBrandt { k1: d[0], k2: d[1], k3: d[2], k4: d[3] },
            (Some("pinhole"), 4 | 5) | (None, 5) => Distortion::BrownConrady {
                k1: d[0],
                k2: d[1],
                p1: d[2],
                p2: d[3],
                k3: d.get(4).copied().unwrap_or(0.0),
            },
            (None, 4) => bail!(
                "{}: 4 distortion coefficients are k1 k2 p1 p2 (pinhole) or k1..k4 (fisheye): add \"model\"",
                path.display()
            ),
            (m, n) => bail!("{}: {n} distortion coefficients do not fit model {m:?}", path.display()),
        };
        if ![o.fx, o.fy, o.cx, o.cy].iter().chain(d).all(|x| x.is_finite()) || o.fx <= 0.0 || o.fy <= 0.0 {
            bail!("{}: intrinsics must be finite with positive focal lengths", path.display());
        }
        return Ok(CameraIntrinsics {
            width: size.0,
            height: size.1,
            fx: o.fx,
            fy: o.fy,
            cx: o.cx,
            cy: o.cy,
            distortion,
        });
    }
    let mut c = hdmap_io::pjlab::read_camera_intrinsic_json(path)?;
    if (c.width, c.height) != size {
        tracing::warn!(
            "{}: written for {}×{} px, the images are {}×{}: K used as given",
            path.display(),
            c.width,
            c.height,
            size.0,
            size.1
        );
    }
    (c.width, c.height) = size;
    Ok(c)
}

/// Runs the command; prints one line per pair and the change.
pub fn camera_lidar(a: &CameraLidarArgs) -> anyhow::Result<()> {
    if a.images.len() != a.scans.len() {
        bail!("{} --image but {} --scan: give one scan per image", a.images.len(), a.scans.len());
    }
    let cfg: TargetlessConfig = match &a.config {
        Some(p) => toml::from_str(&std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?)
            .with_context(|| format!("{}: targetless settings", p.display()))?,
        None => TargetlessConfig::default(),
    };
    cfg.validate().with_context(|| a.config.as_ref().map(|p| p.display().to_string()).unwrap_or_default())?;
    let mut rig = hdmap_io::rig::read_rig(&a.rig)?;
    let (cam, lidar) = (FrameId::Camera(a.camera), FrameId::Lidar(a.lidar));
    let guess =
        rig.transform(cam, lidar).with_context(|| format!("{}: {cam} from {lidar}", a.rig.display()))?;
    let first = hdmap_io::image::read_image(&a.images[0])?;
    let camera = read_intrinsics(&a.intrinsics, (first.width(), first.height()))?;
    let (camera_from_lidar, covariance, what) = match &a.board {
        Some(pattern) => {
            let (cols, rows) = crate::parse_pattern(pattern).context("--board")?;
            for (k, v) in [("--square-m", a.square_m), ("--board-margin-m", a.board_margin_m)] {
                if !(v.is_finite() && v > 0.0) {
                    bail!("{k} {v}: must be a positive number of metres");
                }
            }
            let object = hdmap_calib::board_points(cols, rows, a.square_m);
            let mut views = Vec::new();
            for (i, s) in a.images.iter().zip(&a.scans) {
                let gray = hdmap_io::image::read_image(i)?.to_luma8();
                if gray.dimensions() != (camera.width, camera.height) {
                    bail!(
                        "{}: {}×{} px, the camera model is {}×{}",
                        i.display(),
                        gray.width(),
                        gray.height(),
                        camera.width,
                        camera.height
                    );
                }
                let Some(found) = hdmap_calib::corners::detect(&gray, cols, rows) else {
                    tracing::warn!("{}: no {cols}x{rows} board found, view skipped", i.display());
                    continue;
                };
                let (pose, rms) = target::board_pose(&camera, &object, &found.corners)
                    .with_context(|| format!("{}", i.display()))?;
                println!(
                    "{}: board at {:.2} m, PnP rms {rms:.3} px",
                    i.display(),
                    pose.translation.vector.norm()
                );
                views.push(target::BoardView {
                    camera_from_board: pose,
                    cols,
                    rows,
                    square_m: a.square_m,
                    points: camlidar::read_scan(s)?.points,
                });
            }
            let r = target::calibrate_with_board(&views, &guess, a.board_margin_m)?;
            println!(
                "board points per view {:?}, point-to-plane rms {:.1} mm",
                r.points_per_view,
                r.rms_m * 1000.0
            );
            (r.camera_from_lidar, Some(r.covariance), format!("board-calibrated on {} views", views.len()))
        }
        None => {
            let pairs: Vec<ScenePair> = a
                .images
                .iter()
                .zip(&a.scans)
                .map(|(i, s)| ScenePair::from_files(camera, i, s, &cfg))
                .collect::<Result<_, _>>()?;
            let r = camlidar::refine_targetless(&pairs, &guess, &cfg)?;
            for (k, p) in pairs.iter().enumerate() {
                println!(
                    "{}: {} LiDAR edge points in view, objective {:.4} → {:.4}",
                    p.name, r.edge_points[k], r.score_initial[k], r.score_final[k]
                );
            }
            let from = match r.chosen_search {
                0 => "the guess".to_string(),
                k => format!("restart {k} of {}", cfg.restarts),
            };
            println!(
                "road paint crossings agreeing within {:.2}° (all pairs): {} at the guess → {} at the \
                 result (the search from {from} chosen)",
                cfg.paint_tolerance_deg, r.paint_agreeing_initial, r.paint_agreeing_final
            );
            let how = if cfg.translation { "rotation and translation" } else { "rotation (lever arm kept)" };
            (r.camera_from_lidar, None, format!("{how} refined without a target on {} pairs", pairs.len()))
        }
    };
    let (deg, m) = camlidar::extrinsic_difference(&guess, &camera_from_lidar);
    println!("{cam} from {lidar}: changed by {deg:.3}° / {:.1} cm ({what})", m * 100.0);
    // Write back in the rig's own layout: through the vehicle frame when the rig hangs the
    // LiDAR on it and holds no direct camera–LiDAR entry (the covariance, found for camera-side
    // perturbations, moved with the transform's adjoint). Entries the new one supersedes — either
    // direction of the pair written — are removed, so the rig cannot keep answering the guess.
    let direct = rig.extrinsic(cam, lidar).is_some() || rig.extrinsic(lidar, cam).is_some();
    let (target, source, t, covariance) = match rig.transform(FrameId::Vehicle, lidar) {
        Ok(v_l) if !direct => {
            let t = v_l * camera_from_lidar.inverse();
            let moved = covariance.map(|c| {
                let ad = hdmap_core::pose::adjoint(&t);
                let m = ad * hdmap_core::nalgebra::Matrix6::from_fn(|i, j| c[i][j]) * ad.transpose();
                std::array::from_fn(|i| std::array::from_fn(|j| m[(i, j)]))
            });
            (FrameId::Vehicle, cam, t, moved)
        }
        _ => (cam, lidar, camera_from_lidar, covariance),
    };
    let time_offset_ns = rig
        .extrinsic(target, source)
        .map(|e| e.time_offset_ns)
        .or_else(|| rig.extrinsic(source, target).map(|e| e.time_offset_ns))
        .unwrap_or(0);
    rig.extrinsics
        .retain(|e| !((e.target, e.source) == (target, source) || (e.target, e.source) == (source, target)));
    if let Some(c) = &covariance {
        let sd: Vec<String> = (0..6).map(|i| c[i][i].sqrt()).map(|s| format!("{s:.2e}")).collect();
        println!("σ of {target}_from_{source} (tx ty tz m, rx ry rz rad): {}", sd.join(" "));
    }
    rig.set(Extrinsic { target, source, target_from_source: t, covariance, time_offset_ns });
    hdmap_io::rig::write_rig(
        &a.out,
        &rig,
        &format!("hdmap calibrate camera-lidar: {target}_from_{source} {what}"),
    )?;
    println!("wrote {}", a.out.display());
    if let Some(dir) = &a.overlay {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        for (k, (i, s)) in a.images.iter().zip(&a.scans).enumerate() {
            let rgb = hdmap_io::image::read_image(i)?.to_rgb8();
            let pts = camlidar::read_scan(s)?.points;
            for (tag, t) in [("before", guess), ("after", camera_from_lidar)] {
                let img = camlidar::overlay(&rgb, &camera, &pts, &t, cfg.max_range_m);
                let p = dir.join(format!("pair{k}_{tag}.png"));
                hdmap_io::image::write_png(&p, &image::DynamicImage::ImageRgb8(img))?;
            }
        }
        println!("overlays in {}", dir.display());
    }
    Ok(())
}

/// Arguments of `hdmap calibrate lidar-ins`.
#[derive(clap::Args)]
pub struct LidarInsArgs {
    /// Drive folder: `lidar/*.pcd` with per-point times, `ins.csv` (with its CRS), and
    /// `rig.toml` or `rig_nominal.toml` (the guess) unless --rig is given.
    #[arg(long)]
    pub drive: PathBuf,
    /// Rig file with the guess: the LiDAR's and the INS's (gnss) transforms.
    #[arg(long)]
    pub rig: Option<PathBuf>,
    /// Keyframe spans to scan-match, in keyframes: 1,5 matches consecutive keyframes and
    /// keyframes five apart (longer spans see more rotation per motion).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 5])]
    pub spans: Vec<usize>,
    /// Use every n-th scan as a keyframe.
    #[arg(long, default_value_t = 1)]
    pub keyframe_every: usize,
    /// Search the LiDAR clock offset within ± this many ms; 0 keeps the rig's offset.
    #[arg(long, default_value_t = 50.0)]
    pub max_offset_ms: f64,
    /// Where to write the updated rig.
    #[arg(long)]
    pub out: PathBuf,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// `hdmap calibrate lidar-ins`: the LiDAR–INS extrinsic and the LiDAR clock offset from a
/// drive. Keyframes are scan-matched (GICP, hdmap-register) at the given spans; the clock
/// offset is the shift that best lines up the scan-matched rotations with the INS's
/// (`hdmap_calib::handeye::time_offset`); hand–eye then solves `gnss_from_lidar` from the
/// motions at that offset. Lever-arm directions the drive's motion does not determine are kept
/// at the guess and named. The rig is written back with the covariance and the offset.
pub fn lidar_ins(a: &LidarInsArgs) -> anyhow::Result<()> {
    use hdmap_calib::handeye::{TimedMotion, hand_eye, hand_eye_covariance, time_offset};
    use hdmap_register::drive::{RegisterConfig, load_drive, match_pairs};
    let lidar = FrameId::Lidar(0);
    if a.spans.is_empty() || a.spans.contains(&0) {
        bail!("--spans must be positive keyframe counts, got {:?}", a.spans);
    }
    if !(a.max_offset_ms.is_finite() && (0.0..=1000.0).contains(&a.max_offset_ms)) {
        bail!("--max-offset-ms must lie in 0..=1000, got {}", a.max_offset_ms);
    }
    let cfg = RegisterConfig { keyframe_every: a.keyframe_every.max(1), ..RegisterConfig::default() };
    // Only relative INS motions are used: the INS's CRS does not matter here.
    let drive = load_drive(&a.drive, a.rig.as_deref(), None, &cfg)?;
    let mut rig = drive.rig.clone();
    let n = drive.scans.len();
    let pairs: Vec<(usize, usize)> =
        a.spans.iter().flat_map(|&s| (0..n.saturating_sub(s)).map(move |i| (i, i + s))).collect();
    if pairs.len() < 10 {
        bail!(
            "{}: {n} keyframes give {} motions; calibration needs a longer drive",
            a.drive.display(),
            pairs.len()
        );
    }
    let edges = match_pairs(&drive, &pairs, &cfg)?;
    println!("{} keyframes, {} of {} scan matches converged", n, edges.len(), pairs.len());
    let motions: Vec<TimedMotion> = edges
        .iter()
        .map(|e| TimedMotion {
            from_ns: drive.scans[e.i].1.stamp_ns,
            to_ns: drive.scans[e.j].1.stamp_ns,
            sensor_motion: e.i_from_j,
        })
        .collect();
    let body_at = |t: i64| drive.georef.world_from_gnss.interpolate(t).ok();
    let guess_offset_ns = drive.georef.lidar_time_offset_ns;
    let offset = if a.max_offset_ms > 0.0 {
        let r = time_offset(&motions, &body_at, (a.max_offset_ms * 1e6).round() as i64)
            .with_context(|| format!("{}: LiDAR clock offset", a.drive.display()))?;
        println!(
            "LiDAR clock offset {:+.3} ms ± {:.3} ms (guess {:+.3} ms; {} motions, rotation residual RMS {:.4}°)",
            r.offset_ns as f64 * 1e-6,
            r.sigma_ns * 1e-6,
            guess_offset_ns as f64 * 1e-6,
            r.motions,
            r.rotation_rms_deg
        );
        Some(r)
    } else {
        None
    };
    let offset_ns = offset.as_ref().map_or(guess_offset_ns, |r| r.offset_ns);
    let he_pairs: Vec<_> = motions
        .iter()
        .filter_map(|m| {
            let b = body_at(m.from_ns - offset_ns)?.inverse() * body_at(m.to_ns - offset_ns)?;
            Some((m.sensor_motion, b))
        })
        .collect();
    let guess = drive.georef.gnss_from_lidar;
    let he = hand_eye(&he_pairs, &guess)?;
    // Held-at-guess directions carry the guess's uncertainty: the rig's, else 10 cm.
    let prior_var = rig
        .extrinsic(FrameId::Vehicle, lidar)
        .and_then(|e| e.covariance)
        .map_or(0.01, |c| (c[0][0] + c[1][1] + c[2][2]) / 3.0);
    let cov = hand_eye_covariance(&he_pairs, &guess, &he, 50, 0, prior_var)?;
    let (deg, m) = camlidar::extrinsic_difference(&guess, &he.body_from_sensor);
    println!(
        "gnss_from_lidar changed by {deg:.3}° / {:.1} cm; {} motions, residual RMS {:.4}° / {:.2} cm",
        m * 100.0,
        he.pairs,
        he.rotation_rms_deg,
        he.translation_rms_m * 100.0
    );
    for d in &he.unobservable {
        println!(
            "lever arm along ({:+.2}, {:+.2}, {:+.2}) (INS frame) is not determined by this drive's motion: kept at the guess",
            d.x, d.y, d.z
        );
    }
    // Into the rig: vehicle_from_lidar = vehicle_from_gnss · gnss_from_lidar, the covariance
    // moved by vehicle_from_gnss's adjoint.
    let v_g = rig.transform(FrameId::Vehicle, FrameId::Gnss)?;
    let v_l = v_g * he.body_from_sensor;
    let ad = hdmap_core::pose::adjoint(&v_g);
    let c = ad * cov * ad.transpose();
    let covariance: [[f64; 6]; 6] = std::array::from_fn(|i| std::array::from_fn(|j| c[(i, j)]));
    let sd: Vec<String> = (0..6).map(|i| format!("{:.2e}", c[(i, i)].sqrt())).collect();
    println!("σ of vehicle_from_lidar0 (tx ty tz m, rx ry rz rad): {}", sd.join(" "));
    // The entries the new one supersedes: LiDAR ↔ vehicle and LiDAR ↔ INS, either direction
    // (a camera_from_lidar entry stays: it does not depend on the INS).
    let superseded = |a: FrameId, b: FrameId| {
        (a == lidar && matches!(b, FrameId::Vehicle | FrameId::Gnss))
            || (b == lidar && matches!(a, FrameId::Vehicle | FrameId::Gnss))
    };
    rig.extrinsics.retain(|e| !superseded(e.target, e.source));
    rig.set(Extrinsic {
        target: FrameId::Vehicle,
        source: lidar,
        target_from_source: v_l,
        covariance: Some(covariance),
        time_offset_ns: offset_ns,
    });
    hdmap_io::rig::write_rig(
        &a.out,
        &rig,
        &format!(
            "hdmap calibrate lidar-ins: vehicle_from_lidar0 by hand–eye on {} motions, LiDAR clock offset {}",
            he.pairs,
            if offset.is_some() { "estimated" } else { "kept" }
        ),
    )?;
    println!("wrote {}", a.out.display());
    if let Some(path) = &a.report {
        let t = v_l.translation.vector;
        let rpy = v_l.rotation.euler_angles();
        let report = serde_json::json!({
            "drive": a.drive.display().to_string(),
            "keyframes": n,
            "motions": he.pairs,
            "spans": a.spans,
            "time_offset_ns": offset_ns,
            "time_offset_sigma_ns": offset.as_ref().map(|r| r.sigma_ns),
            "time_offset_curve": offset.as_ref().map(|r| &r.curve),
            "vehicle_from_lidar0": {
                "translation_m": [t.x, t.y, t.z],
                "rpy_deg": [rpy.0.to_degrees(), rpy.1.to_degrees(), rpy.2.to_degrees()],
                "covariance": covariance,
            },
            "changed_deg": deg,
            "changed_m": m,
            "rotation_rms_deg": he.rotation_rms_deg,
            "translation_rms_m": he.translation_rms_m,
            "unobservable_gnss_frame": he.unobservable.iter().map(|d| [d.x, d.y, d.z]).collect::<Vec<_>>(),
        });
        hdmap_io::fsutil::write_bytes_atomic(path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    }
    Ok(())
}
