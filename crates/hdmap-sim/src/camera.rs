//! Camera images rendered from the simulated world by ray casting through the lens model, and
//! stationary captures (the vehicle parked, one image and one LiDAR sweep) for calibration.
//!
//! Grey levels follow what the LiDAR sees: the same reflectivity (asphalt dark, paint bright)
//! lit by a sky light (ambient + Lambert term), a sky gradient where nothing is hit, and seeded
//! sensor noise. Facades carry windows whose glass varies from window to window (the scene's,
//! seen by the LiDAR too); the drive's [`Light`] scales and bends the grey levels and lights
//! some windows from inside (dusk), with the drive's seed.

use hdmap_core::camera::CameraIntrinsics;
use hdmap_core::nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};
use hdmap_core::{FrameId, StampedPose, Trajectory};
use image::GrayImage;
use rayon::prelude::*;

use crate::scene::{Object, Scene};
use crate::{SimError, World, lidar, noise};

/// Farthest surface a pixel's ray looks for, m.
const CAMERA_RANGE_M: f64 = 400.0;

/// A chessboard calibration target: `cols × rows` inner corners `square_m` apart, inner corner
/// (i, j) at (i·s, j·s, 0) of the board frame, black and white squares with a one-square white
/// margin around them.
#[derive(Debug, Clone, Copy)]
pub struct Board {
    /// Inner corners per row.
    pub cols: usize,
    /// Inner corners per column.
    pub rows: usize,
    /// Square size, m.
    pub square_m: f64,
    /// Pose in the local world frame.
    pub world_from_board: Isometry3<f64>,
}

impl Board {
    /// Ray parameter and grey value (0–255) where a ray (world frame) meets the board.
    fn hit(&self, o: &Vector3<f64>, d: &Vector3<f64>) -> Option<(f64, f64)> {
        let inv = self.world_from_board.inverse();
        let (ob, db) = (inv * Point3::from(*o), inv.rotation * d);
        if db.z.abs() < 1e-12 {
            return None;
        }
        let t = -ob.z / db.z;
        if t <= 0.0 {
            return None;
        }
        let (x, y) = (ob.x + t * db.x, ob.y + t * db.y);
        let s = self.square_m;
        let (i, j) = ((x / s).floor() as i64 + 1, (y / s).floor() as i64 + 1);
        // Squares: columns 0..=cols, rows 0..=rows; one more square of white margin around.
        let (nc, nr) = (self.cols as i64 + 1, self.rows as i64 + 1);
        if i < -1 || j < -1 || i > nc || j > nr {
            return None;
        }
        let inside = i >= 0 && j >= 0 && i < nc && j < nr;
        Some((t, if inside && (i + j) % 2 == 0 { 25.0 } else { 235.0 }))
    }
}

impl Board {
    /// A board held in front of a camera at `world_from_camera`: its centre on the viewing ray of
    /// `pixel` at depth `depth_m` (camera z), turned by `tilt` (camera axes) from facing it.
    #[allow(clippy::too_many_arguments)]
    pub fn in_view(
        cols: usize,
        rows: usize,
        square_m: f64,
        cam: &CameraIntrinsics,
        world_from_camera: &Isometry3<f64>,
        pixel: [f64; 2],
        depth_m: f64,
        tilt: UnitQuaternion<f64>,
    ) -> Board {
        let ray = cam.unproject(pixel[0], pixel[1]);
        let centre = ray * (depth_m / ray.z);
        let half = Vector3::new(cols as f64 - 1.0, rows as f64 - 1.0, 0.0) * (square_m / 2.0);
        let camera_from_board = Isometry3::from_parts(Translation3::from(centre - tilt * half), tilt);
        Board { cols, rows, square_m, world_from_board: world_from_camera * camera_from_board }
    }

    /// The board as a scene object (for the LiDAR): a panel covering the squares and margin.
    pub fn object(&self) -> Object {
        let s = self.square_m;
        let (cx, cy) = ((self.cols as f64 - 1.0) * s / 2.0, (self.rows as f64 - 1.0) * s / 2.0);
        let (hx, hy) = ((self.cols as f64 + 3.0) * s / 2.0, (self.rows as f64 + 3.0) * s / 2.0);
        let r = self.world_from_board.rotation;
        let c = self.world_from_board * Point3::new(cx, cy, 0.0);
        let (u, v) = (r * Vector3::x() * hx, r * Vector3::y() * hy);
        Object {
            shape: crate::scene::Shape::Panel {
                center: [c.x, c.y, c.z],
                u: [u.x, u.y, u.z],
                v: [v.x, v.y, v.z],
            },
            class: hdmap_core::SemanticClass::Unlabeled,
            instance: 0,
            reflectivity: 0.5,
            color: [200, 200, 200],
            porosity: 0.0,
        }
    }
}

/// The light an image is taken in (`[camera]` of the sim config).
#[derive(Debug, Clone, Copy)]
pub struct Light {
    /// Scene brightness relative to overcast noon.
    pub light: f64,
    /// Exponent on normalised grey levels.
    pub gamma: f64,
    /// Share of windows lit from inside.
    pub lit_windows: f64,
    /// Seed of which windows are lit (the drive's).
    pub seed: u64,
}

impl Light {
    /// Overcast noon: grey levels as the reflectivities give them, no window lit.
    pub const NOON: Light = Light { light: 1.0, gamma: 1.0, lit_windows: 0.0, seed: 0 };

    /// The drive's light from its config.
    pub fn of(cfg: &crate::SimConfig) -> Light {
        Light {
            light: cfg.camera.light,
            gamma: cfg.camera.gamma,
            lit_windows: cfg.camera.lit_windows,
            seed: cfg.drive_seed(),
        }
    }

    /// Grey level seen for a lit-scene grey `g` (0–255 at noon).
    fn expose(&self, g: f64) -> f64 {
        255.0 * ((g * self.light).max(0.0) / 255.0).powf(self.gamma)
    }
}

/// Whether a window lit from inside shines at facade point `p` (local frame) of building
/// `instance`.
fn lit_window(light: &Light, instance: u16, p: [f64; 3]) -> bool {
    light.lit_windows > 0.0
        && crate::scene::window_at(p).is_some_and(|c| {
            noise::unit(noise::hash(light.seed, "lit", &[instance as i64, c[0], c[1]])) < light.lit_windows
        })
}

/// Renders `cam`'s image at `world_from_camera` (local world frame) with `extra` objects
/// (traffic) placed in the scene.
pub fn render(
    scene: &Scene,
    extra: &[Object],
    cam: &CameraIntrinsics,
    world_from_camera: &Isometry3<f64>,
    seed: u64,
) -> GrayImage {
    render_with_board(scene, extra, cam, world_from_camera, None, seed)
}

/// [`render`] with a chessboard held in the scene; pixels that see the board are averaged over
/// 4×4 sub-pixel rays (its edges are what corner detectors measure).
pub fn render_with_board(
    scene: &Scene,
    extra: &[Object],
    cam: &CameraIntrinsics,
    world_from_camera: &Isometry3<f64>,
    board: Option<&Board>,
    seed: u64,
) -> GrayImage {
    render_lit(scene, extra, cam, world_from_camera, board, seed, &Light::NOON)
}

/// [`render_with_board`] in the given light.
pub fn render_lit(
    scene: &Scene,
    extra: &[Object],
    cam: &CameraIntrinsics,
    world_from_camera: &Isometry3<f64>,
    board: Option<&Board>,
    seed: u64,
    light: &Light,
) -> GrayImage {
    let (w, h) = (cam.width as usize, cam.height as usize);
    let o = world_from_camera.translation.vector;
    let mut buf = vec![0u8; w * h];
    buf.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (x, px) in row.iter_mut().enumerate() {
            let ray = |u: f64, v: f64| world_from_camera.rotation * cam.unproject(u, v);
            let d = ray(x as f64, y as f64);
            let key = noise::hash(seed, "pixel", &[x as i64, y as i64]);
            let scene_grey = |d: &Vector3<f64>| -> (f64, f64) {
                match scene.cast([o.x, o.y, o.z], [d.x, d.y, d.z], CAMERA_RANGE_M, extra, key) {
                    Some(hit) => {
                        let p = [o.x + hit.t * d.x, o.y + hit.t * d.y, o.z + hit.t * d.z];
                        let lit = hit.class == hdmap_core::SemanticClass::Building
                            && lit_window(light, hit.instance, p);
                        let g = light.expose(
                            255.0 * hit.reflectivity * (0.45 + 0.55 * hit.cos_incidence) * 1.15 + 12.0,
                        );
                        (hit.t, if lit { g.max(225.0) } else { g })
                    }
                    // Sky: brighter towards the horizon.
                    None => (f64::INFINITY, light.expose(215.0 - 60.0 * d.z.clamp(0.0, 1.0))),
                }
            };
            let grey = match board {
                Some(b)
                    if b.hit(&o, &d).is_some()
                        || b.hit(&o, &ray(x as f64 + 0.5, y as f64 + 0.5)).is_some() =>
                {
                    let mut sum = 0.0;
                    for k in 0..16 {
                        let (du, dv) = ((k % 4) as f64 * 0.25 - 0.375, (k / 4) as f64 * 0.25 - 0.375);
                        let ds = ray(x as f64 + du, y as f64 + dv);
                        let (ts, gs) = scene_grey(&ds);
                        sum += match b.hit(&o, &ds) {
                            Some((t, g)) if t < ts => light.expose(g),
                            _ => gs,
                        };
                    }
                    sum / 16.0
                }
                _ => scene_grey(&d).1,
            };
            *px = (grey + 2.0 * noise::normal(noise::mix(key))).clamp(0.0, 255.0) as u8;
        }
    });
    GrayImage::from_raw(cam.width, cam.height, buf).unwrap_or_else(|| GrayImage::new(cam.width, cam.height))
}

/// One calibration capture: the vehicle parked at its true pose of drive time `t_s`, camera 0's
/// image (exposed at the sweep's middle) and a full LiDAR sweep, both of the true rig.
pub struct Capture {
    /// Camera 0's image.
    pub image: GrayImage,
    /// The sweep, LiDAR frame (sensor clock stamps).
    pub scan: lidar::Scan,
    /// `world_from_vehicle` (local frame) of the parked vehicle.
    pub world_from_vehicle: Isometry3<f64>,
}

/// Simulates a [`Capture`] at drive time `t_s` (s from the drive start).
pub fn capture(world: &World, t_s: f64, index: usize) -> Result<Capture, SimError> {
    capture_with_board(world, t_s, index, None)
}

/// [`capture`] with a chessboard held up where both sensors see it.
pub fn capture_with_board(
    world: &World,
    t_s: f64,
    index: usize,
    board: Option<&Board>,
) -> Result<Capture, SimError> {
    let stamp = hdmap_core::time::seconds_to_ns(t_s);
    let world_from_vehicle = world.vehicle_poses.interpolate(stamp)?;
    // Parked: the same pose over the whole sweep.
    let period_ns = hdmap_core::time::seconds_to_ns(2.0 / world.cfg.lidar.rate_hz);
    let still = Trajectory::new(
        FrameId::World,
        FrameId::Vehicle,
        vec![
            StampedPose { stamp_ns: stamp - period_ns, target_from_source: world_from_vehicle },
            StampedPose { stamp_ns: stamp + period_ns, target_from_source: world_from_vehicle },
        ],
    )?;
    let v_l = world.rig_true.transform(FrameId::Vehicle, FrameId::Lidar(0))?;
    let v_c = world.rig_true.transform(FrameId::Vehicle, FrameId::Camera(0))?;
    let mut standing = world.parked_drive.clone();
    standing.extend(board.map(Board::object));
    let scan = lidar::simulate_scan(
        &world.cfg.lidar,
        world.cfg.drive_seed(),
        &world.scene,
        &world.movers,
        &standing,
        &still,
        &v_l,
        index,
        t_s,
        (world.cfg.drive.start_unix_s, world.cfg.rig.lidar_time_offset_ns as f64 * 1e-9),
    )?;
    let mid = t_s + 0.5 / world.cfg.lidar.rate_hz;
    let mut placed: Vec<Object> =
        world.movers.iter().map(|m| m.object(&world.scene.map, &world.scene.terrain, mid)).collect();
    placed.extend(world.parked_drive.iter().copied());
    let image = render_lit(
        &world.scene,
        &placed,
        &world.cfg.rig.camera,
        &(world_from_vehicle * v_c),
        board,
        world.cfg.drive_seed() ^ index as u64,
        &Light::of(&world.cfg),
    );
    Ok(Capture { image, scan, world_from_vehicle })
}

/// Camera 0's image at drive time `t_s` (s from the drive start; global shutter) of the true
/// rig on the moving vehicle, with the traffic where it is then and the drive's light; returns
/// the image and the true `world_from_camera0` (local frame).
pub fn drive_frame(world: &World, t_s: f64, index: usize) -> Result<(GrayImage, Isometry3<f64>), SimError> {
    let world_from_vehicle = world.vehicle_poses.interpolate(hdmap_core::time::seconds_to_ns(t_s))?;
    let world_from_camera =
        world_from_vehicle * world.rig_true.transform(FrameId::Vehicle, FrameId::Camera(0))?;
    let mut placed: Vec<Object> =
        world.movers.iter().map(|m| m.object(&world.scene.map, &world.scene.terrain, t_s)).collect();
    placed.extend(world.parked_drive.iter().copied());
    let seed = noise::hash(world.cfg.drive_seed(), "camera0", &[index as i64]);
    let light = Light::of(&world.cfg);
    let image =
        render_lit(&world.scene, &placed, &world.cfg.rig.camera, &world_from_camera, None, seed, &light);
    Ok((image, world_from_camera))
}

/// Drive times (s from the start) of camera 0's images (`camera.rate_hz`; none when 0).
pub fn frame_times(world: &World) -> Vec<f64> {
    let rate = world.cfg.camera.rate_hz;
    if rate <= 0.0 {
        return Vec::new();
    }
    let total = world.vehicle_poses.duration_s();
    (0..).map(|i| i as f64 / rate).take_while(|t| *t <= total).collect()
}

/// Pixel of a local-world point in camera 0 of the true rig on a vehicle at `world_from_vehicle`.
pub fn project_world(world: &World, world_from_vehicle: &Isometry3<f64>, p: [f64; 3]) -> Option<[f64; 2]> {
    let v_c = world.rig_true.transform(FrameId::Vehicle, FrameId::Camera(0)).ok()?;
    let q = (world_from_vehicle * v_c).inverse() * Point3::new(p[0], p[1], p[2]);
    world.cfg.rig.camera.project(&q.coords)
}
