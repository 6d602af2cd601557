//! LiDAR–INS extrinsic from motion on a simulated drive (`hdmap sim` output directory): GICP
//! motions of consecutive keyframes (hdmap-register) against the INS motions over the same
//! intervals, solved by hand–eye (hdmap-calib), compared with the true rig.
//!
//! `cargo run --release -p hdmap-cli --example lidar_ins_sim -- out/demo/sim`

use hdmap_core::FrameId;
use hdmap_register::drive::{RegisterConfig, load_drive, match_scans, motion_pairs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: lidar_ins_sim SIM_DIR")?);
    let layout = hdmap_io::layout::read_layout_geojson(&dir.join("truth/layout.geojson"))?;
    let cfg = RegisterConfig { overlap_radius_m: 0.1, ..RegisterConfig::default() };
    let drive = load_drive(&dir.join("drive"), None, Some(&layout.origin), &cfg)?;
    let edges = match_scans(&drive, &cfg)?;
    let x_nom = drive.georef.gnss_from_lidar;
    // B = gnss_i_from_gnss_j from the INS: world_from_gnss = world_from_lidar(INS) · X_nom⁻¹.
    let pairs = motion_pairs(&drive, &edges);
    let r = hdmap_calib::handeye::hand_eye(&pairs, &x_nom)?;
    let rig_true = hdmap_io::rig::read_rig(&dir.join("truth/rig_true.toml"))?;
    let x_true = rig_true.transform(FrameId::Gnss, FrameId::Lidar(0))?;
    let report = |name: &str, x: &hdmap_core::nalgebra::Isometry3<f64>| {
        let d = x_true.inverse() * x;
        let t = x.translation.vector - x_true.translation.vector;
        // The rotation error about the body (GNSS) axes.
        let e = x_true.rotation * d.rotation.scaled_axis();
        println!(
            "{name}: {:.3}° from the true rotation (about body x/y/z {:+.3}/{:+.3}/{:+.3}°); lever arm off by ({:+.1}, {:+.1}, {:+.1}) cm",
            d.rotation.angle().to_degrees(),
            e.x.to_degrees(),
            e.y.to_degrees(),
            e.z.to_degrees(),
            100.0 * t.x,
            100.0 * t.y,
            100.0 * t.z
        );
    };
    report("nominal rig", &x_nom);
    report("hand–eye", &r.body_from_sensor);
    println!(
        "{} pairs, rotation residual RMS {:.4}°, translation residual RMS {:.2} cm, unobservable {:?}",
        r.pairs,
        r.rotation_rms_deg,
        100.0 * r.translation_rms_m,
        r.unobservable.iter().map(|v| [v.x, v.y, v.z]).collect::<Vec<_>>()
    );
    Ok(())
}
