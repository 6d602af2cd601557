//! Registers a simulated drive (`hdmap sim` output directory) onto a layout (default: its truth
//! layout; e.g. `hdmap layout`'s extraction instead) and prints the ablation and, with a third
//! argument, per-keyframe errors (along / across the true heading) as CSV to that path.
//! Diagnostic companion of `tests/sim_drive.rs`.
//!
//! `cargo run -p hdmap-register --example register_sim -- out/demo/sim [layout.gpkg|-] [errors.csv|-] [dx,dy]`

use hdmap_core::FrameId;
use hdmap_register::drive::{Constraints, RegisterConfig, ate, load_drive, match_scans, register};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(
        args.get(1).ok_or("usage: register_sim SIM_DIR [LAYOUT|-] [errors.csv|-] [dx,dy]")?,
    );
    let layout = match args.get(2).map(String::as_str) {
        None | Some("-") => hdmap_io::layout::read_layout_geojson(&dir.join("truth/layout.geojson"))?,
        Some(p) if p.ends_with(".gpkg") => hdmap_io::layout::read_layout_gpkg(std::path::Path::new(p))?,
        Some(p) => hdmap_io::layout::read_layout_geojson(std::path::Path::new(p))?,
    };
    let mut truth = hdmap_io::trajectory::read_pose_csv(
        &dir.join("truth/scan_poses_true.csv"),
        FrameId::World,
        FrameId::Lidar(0),
    )?;
    // A layout extracted from the orthophoto carries the orthophoto's georeferencing offset
    // (`ortho.georef_offset_m` of the sim config): score against the truth moved by it.
    if let Some(shift) = args.get(4) {
        let v: Vec<f64> = shift.split(',').map(str::parse).collect::<Result<_, _>>()?;
        for p in &mut truth.poses {
            p.target_from_source.translation.vector.x += v[0];
            p.target_from_source.translation.vector.y += v[1];
        }
    }
    let off = hdmap_io::rig::read_rig(&dir.join("truth/rig_true.toml"))?.time_offset_ns(FrameId::Lidar(0));
    let cfg = RegisterConfig::default();
    let t0 = std::time::Instant::now();
    let drive = load_drive(&dir.join("drive"), None, Some(&layout.origin), &cfg)?;
    eprintln!("loaded {} keyframes in {:.1} s", drive.scans.len(), t0.elapsed().as_secs_f64());
    let t0 = std::time::Instant::now();
    let edges = match_scans(&drive, &cfg)?;
    eprintln!(
        "{} edges ({} overlap) in {:.1} s",
        edges.len(),
        edges.iter().filter(|e| e.overlap).count(),
        t0.elapsed().as_secs_f64()
    );
    // Scan matches against the true relative poses.
    for overlap in [false, true] {
        let mut errs: Vec<(f64, f64)> = Vec::new();
        for e in edges.iter().filter(|e| e.overlap == overlap) {
            let at = |k: usize| truth.interpolate(drive.scans[k].1.stamp_ns - off);
            if let (Ok(a), Ok(b)) = (at(e.i), at(e.j)) {
                errs.push(hdmap_register::gicp::pose_difference(&(a.inverse() * b), &e.i_from_j));
            }
        }
        let mut deg: Vec<f64> = errs.iter().map(|e| e.0).collect();
        let mut cm: Vec<f64> = errs.iter().map(|e| 100.0 * e.1).collect();
        deg.sort_by(f64::total_cmp);
        cm.sort_by(f64::total_cmp);
        if let (Some(d), Some(c)) = (deg.get(deg.len() / 2), cm.get(cm.len() / 2)) {
            eprintln!(
                "{} edges against truth: median {d:.3}° / {c:.2} cm, max {:.3}° / {:.2} cm",
                if overlap { "overlap" } else { "consecutive" },
                deg[deg.len() - 1],
                cm[cm.len() - 1]
            );
        }
    }
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
    if let Some(p) = args.get(3).filter(|p| *p != "-") {
        std::fs::write(p, csv)?;
    }
    Ok(())
}
