//! Simulated camera images checked against the world (issue 5: cameras in the simulator):
//! painted ground renders bright and asphalt dark where the truth layout says so, and the
//! capture's LiDAR intensities agree with the image grey values through the true rig (and
//! stop agreeing through a rig turned by 1°).

use hdmap_core::FrameId;
use hdmap_core::nalgebra::{Isometry3, Point3, UnitQuaternion, Vector3};
use hdmap_sim::World;

fn world() -> World {
    let cfg = hdmap_sim::load_config(&hdmap_io::testdata::repo_root().join("configs/sim/demo.toml"))
        .expect("config");
    World::build(&cfg).expect("world")
}

#[test]
fn paint_is_bright_and_asphalt_dark_where_the_layout_says() {
    let w = world();
    let cap = hdmap_sim::camera::capture(&w, 12.0, 0).expect("capture");
    if let Some(dir) = std::env::var_os("HDMAP_SIM_CAMERA_PNG") {
        cap.image.save(std::path::Path::new(&dir).join("capture_12s.png")).expect("png");
    }
    let v = cap.world_from_vehicle;
    let v_c = w.rig_true.transform(FrameId::Vehicle, FrameId::Camera(0)).expect("rig");
    let cam_origin = (v * v_c).translation.vector;
    let (mut right, mut total, mut paint_seen) = (0usize, 0usize, 0usize);
    for i in 0..60 {
        for j in -200..=200 {
            // Ground points 5–35 m ahead, ±10 m to the side, vehicle frame.
            let pv = Point3::new(5.0 + 0.5 * i as f64, 0.05 * j as f64, 0.0);
            let pw = v * pv;
            let p2 = [pw.x, pw.y];
            if !w.scene.map.on_road(p2) {
                continue;
            }
            let z = w.scene.surface_height(p2, &w.parked_drive);
            if (z - w.scene.terrain.height(p2[0], p2[1])).abs() > 1e-6 {
                continue; // a parked car stands here
            }
            let target = Vector3::new(pw.x, pw.y, z);
            let Some([u, vv]) = hdmap_sim::camera::project_world(&w, &v, [target.x, target.y, target.z])
            else {
                continue;
            };
            if u < 2.0
                || vv < 2.0
                || u > cap.image.width() as f64 - 3.0
                || vv > cap.image.height() as f64 - 3.0
            {
                continue;
            }
            // Visible: nothing (traffic) in front of the ground point.
            let d = target - cam_origin;
            let hit = w.scene.cast(
                [cam_origin.x, cam_origin.y, cam_origin.z],
                (d / d.norm()).into(),
                d.norm() + 1.0,
                &[],
                7,
            );
            if hit.is_none_or(|h| (h.t - d.norm()).abs() > 0.05) {
                continue;
            }
            // Paint strength at the point and around it (skip rims, where a pixel mixes both).
            let strength = |q: [f64; 2]| w.scene.map.paint_at(q).map(|(_, s)| s).unwrap_or(0.0);
            let around = [[0.04, 0.0], [-0.04, 0.0], [0.0, 0.04], [0.0, -0.04]]
                .map(|o| strength([p2[0] + o[0], p2[1] + o[1]]));
            let s = strength(p2);
            let painted = s > 0.8 && around.iter().all(|a| *a > 0.8);
            let bare = s == 0.0 && around.iter().all(|a| *a == 0.0);
            if !(painted || bare) {
                continue;
            }
            let g = cap.image.get_pixel(u.round() as u32, vv.round() as u32)[0];
            total += 1;
            paint_seen += painted as usize;
            right += ((g > 110) == painted) as usize;
        }
    }
    let acc = right as f64 / total as f64;
    eprintln!("{right}/{total} ground pixels classified right ({paint_seen} painted): {acc:.4}");
    assert!(total > 500 && paint_seen > 30, "{total} pixels, {paint_seen} painted");
    assert!(acc > 0.97, "{acc}");
}

/// Pearson correlation of LiDAR intensity and grey value at the projected points.
fn agreement(w: &World, cap: &hdmap_sim::camera::Capture, camera_from_lidar: &Isometry3<f64>) -> f64 {
    let cloud = &cap.scan.cloud;
    let inten = cloud.intensity.as_ref().expect("intensity");
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (k, p) in cloud.positions.iter().enumerate() {
        let q = camera_from_lidar * Point3::from(p);
        if q.coords.norm() > 30.0 {
            continue;
        }
        if let Some([u, v]) = w.cfg.rig.camera.project(&q.coords)
            && u >= 0.0
            && v >= 0.0
            && u < cap.image.width() as f64 - 1.0
            && v < cap.image.height() as f64 - 1.0
        {
            xs.push(inten[k] as f64);
            ys.push(cap.image.get_pixel(u.round() as u32, v.round() as u32)[0] as f64);
        }
    }
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum::<f64>().sqrt();
    let sy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum::<f64>().sqrt();
    cov / (sx * sy)
}

#[test]
fn lidar_and_image_agree_through_the_true_rig_only() {
    let w = world();
    let cap = hdmap_sim::camera::capture(&w, 30.0, 1).expect("capture");
    let c_l = w.rig_true.transform(FrameId::Camera(0), FrameId::Lidar(0)).expect("rig");
    let truth = agreement(&w, &cap, &c_l);
    let turned = Isometry3::from_parts(
        Default::default(),
        UnitQuaternion::from_scaled_axis(Vector3::y() * 1f64.to_radians()),
    ) * c_l;
    let off = agreement(&w, &cap, &turned);
    eprintln!("intensity–grey correlation: true rig {truth:.3}, turned by 1° {off:.3}");
    assert!(truth > 0.6 && truth > off + 0.1, "true {truth:.3} vs turned {off:.3}");
}
