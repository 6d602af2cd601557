//! The demo scenario, simulated once per test binary, and helpers shared by the truth tests.

use std::path::PathBuf;
use std::sync::OnceLock;

use hdmap_core::FrameId;
use hdmap_core::nalgebra::{Isometry3, Point3};
use hdmap_sim::geom::{Grid, P2, in_polygon};
use hdmap_sim::scene::Shape;
use hdmap_sim::{SimConfig, SimSummary, World};

pub struct Demo {
    pub dir: PathBuf,
    pub world: World,
    pub summary: SimSummary,
}

pub fn demo_config() -> SimConfig {
    hdmap_sim::load_config(&hdmap_io::testdata::repo_root().join("configs/sim/demo.toml"))
        .expect("demo config")
}

pub fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let mut cfg = demo_config();
        cfg.camera.rate_hz = 0.0; // the truth checks here are of the LiDAR, INS and layout
        // A `static` is never dropped, so a TempDir here would leak ~300 MB per run: the demo
        // lives at one fixed place under cargo's test scratch folder instead, rewritten each run.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hdmap-sim-truth-demo");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("clear the previous demo");
        }
        let summary = hdmap_sim::simulate(&cfg, &dir, |_, _, _| {}).expect("simulate demo");
        let world = World::build(&cfg).expect("world");
        Demo { dir, world, summary }
    })
}

/// Every written scan: (index, cloud, labels).
pub fn scans(d: &Demo, every: usize) -> Vec<(usize, hdmap_core::PointCloud, Vec<u32>)> {
    let mut out = Vec::new();
    for i in (0..d.summary.scans).step_by(every) {
        let name = format!("{i:06}");
        let f = hdmap_io::pcd::read_pcd(&d.dir.join(hdmap_sim::files::LIDAR_DIR).join(format!("{name}.pcd")))
            .expect("pcd");
        let l = hdmap_io::labels::read_labels(
            &d.dir.join(hdmap_sim::files::LABELS_DIR).join(format!("{name}.label")),
            Some(f.cloud.len()),
        )
        .expect("labels");
        out.push((i, f.cloud, l));
    }
    out
}

/// True time (s from the drive start) of a point stamp (sensor clock, Unix s).
pub fn true_time(world: &World, stamp_s: f64) -> f64 {
    stamp_s - world.cfg.rig.lidar_time_offset_ns as f64 * 1e-9 - world.cfg.drive.start_unix_s
}

/// `world_from_lidar` (local frame) at a true time.
pub fn world_from_lidar(world: &World, t: f64) -> Isometry3<f64> {
    let v_l = world.rig_true.transform(FrameId::Vehicle, FrameId::Lidar(0)).expect("rig");
    world.vehicle_poses.interpolate(hdmap_core::time::seconds_to_ns(t)).expect("in span") * v_l
}

/// A point of a scan in the local world frame.
pub fn to_world(world: &World, cloud: &hdmap_core::PointCloud, i: usize) -> (Point3<f64>, f64) {
    let t = true_time(world, cloud.time_s.as_ref().expect("time")[i]);
    let p = cloud.positions.get(i);
    (world_from_lidar(world, t) * Point3::new(p[0], p[1], p[2]), t)
}

/// Polygons with a spatial index, for distance queries.
pub struct PolygonSet {
    pub rings: Vec<Vec<P2>>,
    grid: Grid,
}

impl PolygonSet {
    pub fn new(rings: Vec<Vec<P2>>) -> Self {
        let all: Vec<P2> = rings.iter().flatten().copied().collect();
        let b = hdmap_sim::geom::bounds(&all);
        let mut grid = Grid::new([b[0] - 5.0, b[1] - 5.0, b[2] + 5.0, b[3] + 5.0], 2.0);
        for (i, r) in rings.iter().enumerate() {
            let bb = hdmap_sim::geom::bounds(r);
            grid.insert(i as u32, [bb[0] - 0.5, bb[1] - 0.5, bb[2] + 0.5, bb[3] + 0.5]);
        }
        Self { rings, grid }
    }

    /// Distance to the nearest polygon (0 inside), capped at 0.5 m.
    pub fn distance(&self, p: P2) -> f64 {
        let mut best: f64 = 0.5;
        for &i in self.grid.at(p) {
            let r = &self.rings[i as usize];
            if in_polygon(p, r) {
                return 0.0;
            }
            best = best.min(hdmap_sim::geom::dist_to_ring(p, r));
        }
        best
    }
}

/// The layout's paint outlines in local coordinates.
pub fn layout_paint(world: &World) -> PolygonSet {
    let o = world.cfg.origin.origin;
    let polys = hdmap_core::paint_polygons(&world.scene.map.layout, world.cfg.markings.double_gap_m);
    PolygonSet::new(
        polys.into_iter().map(|(_, r)| r.into_iter().map(|p| [p[0] - o[0], p[1] - o[1]]).collect()).collect(),
    )
}

/// True when `p` lies inside `shape` grown by `margin`.
pub fn inside(shape: &Shape, p: [f64; 3], margin: f64) -> bool {
    match *shape {
        Shape::Box { center, yaw, half, z } => {
            let d = [p[0] - center[0], p[1] - center[1]];
            let (c, s) = (yaw.cos(), yaw.sin());
            let u = c * d[0] + s * d[1];
            let v = -s * d[0] + c * d[1];
            u.abs() <= half[0] + margin
                && v.abs() <= half[1] + margin
                && p[2] >= z[0] - margin
                && p[2] <= z[1] + margin
        }
        Shape::Cylinder { center, radius, z } => {
            (p[0] - center[0]).hypot(p[1] - center[1]) <= radius + margin
                && p[2] >= z[0] - margin
                && p[2] <= z[1] + margin
        }
        Shape::Ellipsoid { center, radii } => {
            let q: f64 = (0..3).map(|k| ((p[k] - center[k]) / (radii[k] + margin)).powi(2)).sum();
            q <= 1.0
        }
        Shape::Panel { center, u, v } => {
            let h = [p[0] - center[0], p[1] - center[1], p[2] - center[2]];
            let dot = |a: [f64; 3], b: [f64; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
            let n = [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
            let (a, b) = (dot(h, u) / dot(u, u).sqrt(), dot(h, v) / dot(v, v).sqrt());
            dot(h, n).abs() / dot(n, n).sqrt() <= margin
                && a.abs() <= dot(u, u).sqrt() + margin
                && b.abs() <= dot(v, v).sqrt() + margin
        }
    }
}
