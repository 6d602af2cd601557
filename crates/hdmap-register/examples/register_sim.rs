//! Registers a simulated drive (`hdmap sim` output directory) onto a layout (default: its truth
//! layout; e.g. `hdmap layout`'s extraction instead) and prints the ablation and, with a third
//! argument, per-keyframe errors (along / across the true heading) as CSV to that path.
//! Diagnostic companion of `tests/sim_drive.rs`.
//!
//! `cargo run -p hdmap-register --example register_sim -- out/demo [layout.gpkg|-] [errors.csv]`

use hdmap_core::FrameId;
use hdmap_register::drive::{Constraints, RegisterConfig, ate, load_drive, match_scans, register};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir =
        std::path::PathBuf::from(args.get(1).ok_or("usage: register_sim SIM_DIR [LAYOUT|-] [errors.csv]")?);
    let layout = match args.get(2).map(String::as_str) {
        None | Some("-") => hdmap_io::layout::read_layout_geojson(&dir.join("truth/layout.geojson"))?,
        Some(p) if p.ends_with(".gpkg") => hdmap_io::layout::read_layout_gpkg(std::path::Path::new(p))?,
        Some(p) => hdmap_io::layout::read_layout_geojson(std::path::Path::new(p))?,
    };
    let truth = hdmap_io::trajectory::read_pose_csv(
        &dir.join("truth/scan_poses_true.csv"),
        FrameId::World,
        FrameId::Lidar(0),
    )?;
    let off = hdmap_io::rig::read_rig(&dir.join("truth/rig_true.toml"))?.time_offset_ns(FrameId::Lidar(0));
    let cfg = RegisterConfig::default();
    let t0 = std::time::Instant::now();
    let drive = load_drive(&dir.join("drive"), None, &layout.origin, &cfg)?;
    eprintln!("loaded {} keyframes in {:.1} s", drive.scans.len(), t0.elapsed().as_secs_f64());
    let t0 = std::time::Instant::now();
    let edges = match_scans(&drive, &cfg)?;
    eprintln!(
        "{} edges ({} overlap) in {:.1} s",
        edges.len(),
        edges.iter().filter(|e| e.overlap).count(),
        t0.elapsed().as_secs_f64()
    );
    let mut csv = String::from("variant,k,stamp_ns,along_m,across_m,up_m\n");
    for c in [Constraints::GnssOnly, Constraints::ScanMatching, Constraints::Layout] {
        let t0 = std::time::Instant::now();
        let r = register(&drive, &edges, Some(&layout), c, &cfg)?;
        let stamps: Vec<i64> = r.stamps_ns.iter().map(|s| s - off).collect();
        let a = ate(&stamps, &r.world_from_lidar, &truth)?;
        eprintln!(
            "{c:?} ({:.1} s): ATE xy RMSE {:.1} cm max {:.1} cm, 3D RMSE {:.1} cm, rotation {:.3}°, paint {:?}",
            t0.elapsed().as_secs_f64(),
            100.0 * a.rmse_xy_m,
            100.0 * a.max_xy_m,
            100.0 * a.rmse_m,
            a.mean_rot_deg,
            r.paint
        );
        for (k, (s, e)) in stamps.iter().zip(&r.world_from_lidar).enumerate() {
            let g = truth.interpolate((*s).clamp(truth.span_ns().0, truth.span_ns().1))?;
            let d = e.translation.vector - g.translation.vector;
            // LiDAR x is forward on the demo rig.
            let fwd = g.rotation * hdmap_core::nalgebra::Vector3::x();
            let h = hdmap_core::nalgebra::Vector3::new(fwd.x, fwd.y, 0.0).normalize();
            let along = d.x * h.x + d.y * h.y;
            let across = -d.x * h.y + d.y * h.x;
            csv.push_str(&format!("{c:?},{k},{s},{along:.4},{across:.4},{:.4}\n", d.z));
        }
    }
    if let Some(p) = args.get(3) {
        std::fs::write(p, csv)?;
    }
    Ok(())
}
