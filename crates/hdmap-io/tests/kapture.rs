//! kapture: our reader against NAVER LABS' `kapture` package (the reference, PyPI) on the
//! real Berlin sample, and our writer read back by both.

use std::path::Path;

use hdmap_core::nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};
use hdmap_io::kapture::{
    FeatureFiles, Kapture, Observation, PoseRecord, Record, Sensor, read_kapture, write_kapture,
};
use hdmap_io::testdata::{run_python, shared_data};
use serde_json::Value;

fn reference(dir: &Path) -> Value {
    serde_json::from_str(&run_python("kapture_check.py", &[dir.as_os_str()])).expect("json")
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

/// Everything the reference reports about `dir` agrees with what our reader returns.
fn agrees(ours: &Kapture, theirs: &Value, point_tol: f64) {
    let sensors = theirs["sensors"].as_object().expect("sensors");
    assert_eq!(sensors.len(), ours.sensors.len());
    for s in &ours.sensors {
        let t = &sensors[&s.id];
        assert_eq!(t["type"], s.kind.as_str(), "{}", s.id);
        if let Some((model, w, h, p)) = s.camera() {
            assert_eq!(t["model"], model.as_str());
            let tp: Vec<f64> =
                t["params"].as_array().expect("params").iter().filter_map(Value::as_f64).collect();
            let mut ourp = vec![f64::from(w), f64::from(h)];
            ourp.extend(p);
            assert_eq!(tp, ourp, "{}", s.id);
        }
    }
    let traj = theirs["trajectories"].as_array().expect("trajectories");
    assert_eq!(traj.len(), ours.trajectories.len());
    for (t, o) in traj.iter().zip(&ours.trajectories) {
        assert_eq!(t[0].as_i64(), Some(o.timestamp));
        assert_eq!(t[1], o.id.as_str());
        let q = o.pose.rotation.quaternion();
        let v = o.pose.translation.vector;
        for (k, x) in [q.w, q.i, q.j, q.k, v.x, v.y, v.z].iter().enumerate() {
            assert!(close(t[2 + k].as_f64().expect("f64"), *x, 1e-12), "trajectory {k}: {t} vs {x}");
        }
    }
    let recs = theirs["records_camera"].as_array().expect("records");
    assert_eq!(recs.len(), ours.records_camera.len());
    for (t, o) in recs.iter().zip(&ours.records_camera) {
        assert_eq!(
            (t[0].as_i64(), t[1].as_str(), t[2].as_str()),
            (Some(o.timestamp), Some(o.device_id.as_str()), Some(o.path.as_str()))
        );
    }
    for (kind, set) in [("keypoints", &ours.keypoints), ("descriptors", &ours.descriptors)] {
        let t = theirs[kind].as_object().expect(kind);
        assert_eq!(t.len(), set.len(), "{kind}");
        for (ty, ff) in set {
            assert_eq!(t[ty]["dsize"].as_u64(), Some(ff.dsize as u64));
            for (image, tf) in t[ty]["files"].as_object().expect("files") {
                assert_eq!(tf["count"].as_u64(), Some(ff.count(image) as u64), "{kind} {ty} {image}");
                let first: Vec<f64> =
                    tf["first"].as_array().expect("first").iter().filter_map(Value::as_f64).collect();
                let ours_first: Vec<f64> = match ff.dtype.as_str() {
                    "float32" => ff.rows_f32(image).expect("rows")[0].iter().map(|v| f64::from(*v)).collect(),
                    "uint8" => ff.files[image][..ff.dsize].iter().map(|v| f64::from(*v)).collect(),
                    other => panic!("dtype {other} not compared"),
                };
                assert_eq!(first, ours_first, "{kind} {ty} {image}");
            }
        }
    }
    for (ty, pairs) in theirs["matches"].as_object().expect("matches") {
        let ours_pairs = &ours.matches[ty];
        let pairs = pairs.as_object().expect("pairs");
        assert_eq!(pairs.len(), ours_pairs.len());
        for ((a, b), rows) in ours_pairs {
            let t = &pairs[&format!("{a}|{b}")];
            assert_eq!(t["count"].as_u64(), Some(rows.len() as u64));
            let first: Vec<f64> =
                t["first"].as_array().expect("first").iter().filter_map(Value::as_f64).collect();
            assert_eq!(first, rows[0].to_vec());
        }
    }
    let pts = theirs["points3d"].as_array().expect("points3d");
    assert_eq!(pts.len(), ours.points3d.len());
    for (t, o) in pts.iter().zip(&ours.points3d) {
        for k in 0..6 {
            assert!(close(t[k].as_f64().expect("f64"), o[k], point_tol), "{t} vs {o:?}");
        }
    }
    let obs = theirs["observations"].as_array().expect("observations");
    assert_eq!(obs.len(), ours.observations.len());
    for (t, o) in obs.iter().zip(&ours.observations) {
        assert_eq!(t[0].as_u64(), Some(o.point3d_id as u64));
        assert_eq!(t[1], o.keypoints_type.as_str());
        let seen: Vec<(String, u32)> = t[2]
            .as_array()
            .expect("seen")
            .iter()
            .map(|p| (p[0].as_str().expect("image").to_string(), p[1].as_u64().expect("id") as u32))
            .collect();
        assert_eq!(seen, o.seen_in);
    }
}

#[test]
fn reads_the_berlin_sample_as_the_reference_does_and_writes_it_back() {
    let Some(root) = shared_data("kapture_samples/berlin_opensfm/kapture") else { return };
    let ours = read_kapture(&root).expect("read berlin");
    assert_eq!(ours.records_camera.len(), 3);
    assert_eq!(ours.keypoints["HessianAffine"].count("01.jpg"), 4670);
    assert_eq!(ours.descriptors["HOG"].keypoints_type.as_deref(), Some("HessianAffine"));
    assert_eq!(ours.points3d.len(), 1702);
    agrees(&ours, &reference(&root), 1e-15);
    // Written by us, read by both: the reference sees the same kapture; ours reads back
    // exactly (points to the 10 decimals kapture itself writes).
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("berlin");
    write_kapture(&out, &ours).expect("write");
    let back = read_kapture(&out).expect("read back");
    agrees(&back, &reference(&out), 1e-9);
    assert_eq!(
        Kapture { points3d: Vec::new(), ..back.clone() },
        Kapture { points3d: Vec::new(), ..ours.clone() }
    );
    // Writing again over an existing folder replaces it.
    write_kapture(&out, &Kapture { points3d: Vec::new(), ..ours }).expect("rewrite");
    assert!(read_kapture(&out).expect("read").points3d.is_empty());
}

#[test]
fn a_written_map_with_rig_lidar_and_observations_loads_in_the_reference() {
    let pose = |x: f64, yaw: f64| {
        Isometry3::from_parts(
            Translation3::new(x, 0.5, 1.5),
            UnitQuaternion::from_scaled_axis(Vector3::new(0.0, 0.0, yaw)),
        )
    };
    let kp: Vec<u8> = [[10.5f32, 20.25], [100.0, 50.0], [7.0, 8.0]]
        .iter()
        .flatten()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let desc: Vec<u8> = (0..3 * 32).map(|i| (i * 7 % 256) as u8).collect();
    let k = Kapture {
        sensors: vec![
            Sensor {
                id: "camera0".into(),
                name: "front".into(),
                kind: "camera".into(),
                params: [
                    "OPENCV", "1280", "720", "905", "903.5", "641.2", "359.4", "-0.1", "0.02", "0.001",
                    "-0.0005",
                ]
                .map(String::from)
                .to_vec(),
            },
            Sensor { id: "lidar0".into(), name: "roof".into(), kind: "lidar".into(), params: vec![] },
        ],
        rigs: vec![
            PoseRecord {
                timestamp: 0,
                id: "vehicle".into(),
                sensor_id: "camera0".into(),
                pose: pose(1.8, 0.01),
            },
            PoseRecord {
                timestamp: 0,
                id: "vehicle".into(),
                sensor_id: "lidar0".into(),
                pose: pose(1.3, 0.0),
            },
        ],
        trajectories: vec![
            PoseRecord {
                timestamp: 1_000,
                id: "vehicle".into(),
                sensor_id: String::new(),
                pose: pose(10.0, 0.3),
            },
            PoseRecord {
                timestamp: 2_000,
                id: "vehicle".into(),
                sensor_id: String::new(),
                pose: pose(12.0, 0.31),
            },
        ],
        records_camera: vec![
            Record { timestamp: 1_000, device_id: "camera0".into(), path: "camera0/000001.png".into() },
            Record { timestamp: 2_000, device_id: "camera0".into(), path: "camera0/000002.png".into() },
        ],
        records_lidar: vec![Record {
            timestamp: 1_000,
            device_id: "lidar0".into(),
            path: "lidar0/000001.pcd".into(),
        }],
        keypoints: [(
            "orb".to_string(),
            FeatureFiles {
                dtype: "float32".into(),
                dsize: 2,
                keypoints_type: None,
                metric_type: None,
                files: [
                    ("camera0/000001.png".to_string(), kp.clone()),
                    ("camera0/000002.png".to_string(), kp),
                ]
                .into(),
            },
        )]
        .into(),
        descriptors: [(
            "orb".to_string(),
            FeatureFiles {
                dtype: "uint8".into(),
                dsize: 32,
                keypoints_type: Some("orb".into()),
                metric_type: Some("hamming".into()),
                files: [
                    ("camera0/000001.png".to_string(), desc.clone()),
                    ("camera0/000002.png".to_string(), desc),
                ]
                .into(),
            },
        )]
        .into(),
        matches: Default::default(),
        points3d: vec![[1.0, 2.0, 3.0, 255.0, 128.0, 0.0], [4.0, 5.0, 6.0, 0.0, 0.0, 0.0]],
        observations: vec![
            Observation {
                point3d_id: 0,
                keypoints_type: "orb".into(),
                seen_in: vec![("camera0/000001.png".into(), 0), ("camera0/000002.png".into(), 1)],
            },
            Observation {
                point3d_id: 1,
                keypoints_type: "orb".into(),
                seen_in: vec![("camera0/000001.png".into(), 2)],
            },
        ],
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("map");
    write_kapture(&out, &k).expect("write");
    let theirs = reference(&out);
    agrees(&k, &theirs, 1e-9);
    let rigs = theirs["rigs"].as_array().expect("rigs");
    assert_eq!(rigs.len(), 2);
    let cam = rigs.iter().find(|r| r[1] == "camera0").expect("camera in rig");
    assert!(close(cam[6].as_f64().expect("tx"), 1.8, 1e-12), "{cam}");
    assert_eq!(read_kapture(&out).expect("read"), k);
}
