//! `hdmap calibrate camera-lidar`: targetless refinement of a camera–LiDAR extrinsic on
//! ordinary street images and the scans taken with them, written back into a rig file.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hdmap_calib::camlidar::{self, ScenePair, TargetlessConfig};
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
    /// (`{"fx","fy","cx","cy","dist":[k1,k2,p1,p2,k3]}`) or an OpenCalib `*-intrinsic.json`.
    #[arg(long)]
    pub intrinsics: PathBuf,
    /// An image; give one `--scan` per `--image`, in the same order.
    #[arg(long = "image", required = true)]
    pub images: Vec<PathBuf>,
    /// The LiDAR scan (PCD, KITTI .bin, LAS/LAZ) taken with the image of the same position.
    #[arg(long = "scan", required = true)]
    pub scans: Vec<PathBuf>,
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
        let distortion = match d.len() {
            0 => Distortion::None,
            4 | 5 => Distortion::BrownConrady {
                k1: d[0],
                k2: d[1],
                p1: d[2],
                p2: d[3],
                k3: d.get(4).copied().unwrap_or(0.0),
            },
            n => bail!("{}: {n} distortion coefficients, expected 0, 4 or 5", path.display()),
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
    let (deg, m) = camlidar::extrinsic_difference(&guess, &r.camera_from_lidar);
    println!(
        "{cam} from {lidar}: changed by {deg:.3}° / {:.1} cm ({}; {} evaluations)",
        m * 100.0,
        if cfg.translation { "rotation and translation refined" } else { "rotation refined, lever arm kept" },
        r.evaluations
    );
    // Write back in the rig's own layout: through the vehicle frame when both sensors hang on it.
    let vehicle_from_lidar = rig.extrinsic(FrameId::Vehicle, lidar).map(|e| e.target_from_source);
    let (target, source, t) = match vehicle_from_lidar {
        Some(v_l) if rig.extrinsic(cam, lidar).is_none() => {
            (FrameId::Vehicle, cam, v_l * r.camera_from_lidar.inverse())
        }
        _ => (cam, lidar, r.camera_from_lidar),
    };
    let time_offset_ns = rig.extrinsic(target, source).map(|e| e.time_offset_ns).unwrap_or(0);
    rig.set(Extrinsic { target, source, target_from_source: t, covariance: None, time_offset_ns });
    hdmap_io::rig::write_rig(
        &a.out,
        &rig,
        &format!(
            "hdmap calibrate camera-lidar: {target}_from_{source} refined on {} image/scan pairs",
            pairs.len()
        ),
    )?;
    println!("wrote {}", a.out.display());
    if let Some(dir) = &a.overlay {
        std::fs::create_dir_all(dir).with_context(|| format!("{}", dir.display()))?;
        for (k, (i, s)) in a.images.iter().zip(&a.scans).enumerate() {
            let rgb = hdmap_io::image::read_image(i)?.to_rgb8();
            let pts = camlidar::read_scan(s)?.points;
            for (tag, t) in [("before", guess), ("after", r.camera_from_lidar)] {
                let img = camlidar::overlay(&rgb, &camera, &pts, &t, cfg.max_range_m);
                let p = dir.join(format!("pair{k}_{tag}.png"));
                hdmap_io::image::write_png(&p, &image::DynamicImage::ImageRgb8(img))?;
            }
        }
        println!("overlays in {}", dir.display());
    }
    Ok(())
}
