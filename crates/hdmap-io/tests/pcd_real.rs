//! PCD against the real PJLab scans: LZF-compressed binary, ascii and binary files.

use std::path::PathBuf;

use hdmap_core::{Column, ColumnValues, PointCloud};
use hdmap_io::pcd::{PcdEncoding, PcdWriteOptions, read_pcd, write_pcd};
use hdmap_io::testdata::shared_data;

fn scans() -> Option<Vec<PathBuf>> {
    let dir = shared_data("pjlab_sensorscalib/lidar2imu_seq/top_center_lidar")?;
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("dir").map(|e| e.expect("entry").path()).collect();
    v.sort();
    assert_eq!(v.len(), 5, "the 5 PJLab scans");
    Some(v)
}

fn bit_identical(a: &PointCloud, b: &PointCloud) -> bool {
    let pos = a
        .positions
        .iter()
        .zip(b.positions.iter())
        .all(|(p, q)| (0..3).all(|k| p[k].to_bits() == q[k].to_bits()));
    let f32s = |v: &Option<Vec<f32>>| v.as_ref().map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    let f64s = |v: &Option<Vec<f64>>| v.as_ref().map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    a.len() == b.len()
        && pos
        && f32s(&a.intensity) == f32s(&b.intensity)
        && f64s(&a.time_s) == f64s(&b.time_s)
        && a.ring == b.ring
        && a.labels == b.labels
        && a.extra == b.extra
}

#[test]
fn pjlab_scans_have_the_documented_fields_and_a_plausible_sweep() {
    let Some(scans) = scans() else { return };
    for path in &scans {
        let f = read_pcd(path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.header.encoding, PcdEncoding::BinaryCompressed);
        let names: Vec<&str> = f.header.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["x", "y", "z", "intensity", "ring", "timestamp"]);
        assert_eq!(f.cloud.len() + f.dropped_non_finite, f.header.points);
        // A 10 Hz, 64-beam sweep: per-point times span ~0.1 s and rings cover 0..63.
        let t = f.cloud.time_s.as_ref().expect("timestamp channel");
        let (t0, t1) = t.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        assert!((0.095..0.105).contains(&(t1 - t0)), "{}: sweep {:.4} s", path.display(), t1 - t0);
        let rings = f.cloud.ring.as_ref().expect("ring channel");
        let mut per_ring = [0usize; 64];
        for r in rings {
            assert!(*r < 64, "ring {r} on a 64-beam scanner");
            per_ring[*r as usize] += 1;
        }
        // Upward beams see something at every azimuth step: 360° / 0.2° = 1800 returns per ring
        // per sweep; the lowest beams are mostly blocked by the car itself.
        let full = per_ring.iter().copied().max().unwrap_or(0);
        assert!((1790..=1810).contains(&full), "{}: busiest ring {full}", path.display());
        assert!(per_ring.iter().filter(|n| **n > 0).count() >= 60, "{}: {per_ring:?}", path.display());
        // Ranges of a car-mounted scanner: within 200 m.
        for p in f.cloud.positions.iter() {
            assert!((p[0] * p[0] + p[1] * p[1]).sqrt() < 200.0);
        }
    }
}

#[test]
fn every_pjlab_pcd_reads() {
    let Some(dir) = shared_data("pjlab_sensorscalib") else { return };
    let mut stack = vec![dir];
    let mut n = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "pcd") {
                let f = read_pcd(&p).unwrap_or_else(|e| panic!("{e}"));
                assert!(f.cloud.len() > 1000, "{}", p.display());
                n += 1;
            }
        }
    }
    assert!(n >= 18, "found {n} PCD files");
}

#[test]
fn round_trips_are_bit_exact_in_every_encoding() {
    let Some(scans) = scans() else { return };
    let dir = tempfile::tempdir().expect("tmp");
    let original = read_pcd(&scans[0]).unwrap_or_else(|e| panic!("{e}"));
    for enc in [PcdEncoding::Ascii, PcdEncoding::Binary, PcdEncoding::BinaryCompressed] {
        // Same layout as the source (F4 xyz, U2 ring, F8 timestamp).
        let out = dir.path().join(format!("like_{enc:?}.pcd"));
        let mut opts = PcdWriteOptions::like(&original.header);
        opts.encoding = enc;
        write_pcd(&out, &original.cloud, &opts).unwrap_or_else(|e| panic!("{e}"));
        let back = read_pcd(&out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.header.fields, original.header.fields);
        assert!(bit_identical(&original.cloud, &back.cloud), "{enc:?} with source layout");
        // hdmap's own layout, with extra typed columns of every kind and a 3-component one.
        let mut c = original.cloud.clone();
        let n = c.len();
        c.labels.insert("class".into(), (0..n as u32).map(|i| i % 20).collect());
        c.labels.insert("instance".into(), (0..n as u32).collect());
        c.extra.insert(
            "rgb".into(),
            Column { components: 3, values: ColumnValues::U8((0..3 * n).map(|i| i as u8).collect()) },
        );
        c.extra.insert(
            "t_ns".into(),
            Column::scalar(ColumnValues::U64((0..n as u64).map(|i| u64::MAX - i).collect())),
        );
        c.extra.insert(
            "dz".into(),
            Column::scalar(ColumnValues::F64((0..n).map(|i| i as f64 * 1e-7 + 0.1).collect())),
        );
        c.extra.insert(
            "flag".into(),
            Column::scalar(ColumnValues::I8((0..n).map(|i| (i % 256) as u8 as i8).collect())),
        );
        let out = dir.path().join(format!("own_{enc:?}.pcd"));
        write_pcd(&out, &c, &PcdWriteOptions::new(enc)).unwrap_or_else(|e| panic!("{e}"));
        let back = read_pcd(&out).unwrap_or_else(|e| panic!("{e}"));
        assert!(bit_identical(&c, &back.cloud), "{enc:?} with hdmap layout");
    }
}

#[test]
fn ascii_pcd_from_pjlab_matches_its_header() {
    let Some(p) = shared_data("pjlab_sensorscalib/lidar2camera_manual/0.pcd") else { return };
    let f = read_pcd(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(f.header.encoding, PcdEncoding::Ascii);
    assert_eq!(f.cloud.len() + f.dropped_non_finite, 78238);
}
