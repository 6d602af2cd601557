//! KITTI Velodyne scans: `.bin` files of little-endian f32 `x y z reflectance` records.

use std::path::Path;

use hdmap_core::{CloudFrame, FrameId, PointCloud};

use crate::IoError;
use crate::fsutil::{check_input_file, write_atomic};

/// Reads a KITTI `.bin` scan into a cloud in the frame of `lidar` (KITTI scans are in the
/// sensor frame). Reflectance (0–1) becomes intensity. Fails when the size is not a multiple
/// of 16 bytes (a truncated record) or a coordinate is not finite.
pub fn read_kitti_bin(path: &Path, lidar: FrameId) -> Result<PointCloud, IoError> {
    check_input_file(path)?;
    let bytes = std::fs::read(path).map_err(|source| IoError::Os { path: path.to_path_buf(), source })?;
    if bytes.len() % 16 != 0 {
        return Err(IoError::Truncated {
            path: path.to_path_buf(),
            detail: format!("{} bytes is not a whole number of 16-byte records", bytes.len()),
        });
    }
    let f = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let mut positions = Vec::with_capacity(bytes.len() / 16);
    let mut intensity = Vec::with_capacity(bytes.len() / 16);
    for r in bytes.chunks_exact(16) {
        positions.push([f(&r[0..4]) as f64, f(&r[4..8]) as f64, f(&r[8..12]) as f64]);
        intensity.push(f(&r[12..16]));
    }
    let mut cloud = PointCloud::from_positions(CloudFrame::Sensor(lidar), positions);
    cloud.intensity = Some(intensity);
    cloud.validate().map_err(|source| IoError::Invalid { path: path.to_path_buf(), source })?;
    Ok(cloud)
}

/// Writes a cloud as a KITTI `.bin` (f32 x y z + intensity, 0 when absent), atomically.
pub fn write_kitti_bin(path: &Path, cloud: &PointCloud) -> Result<(), IoError> {
    use std::io::Write;
    cloud.validate().map_err(|source| IoError::Invalid { path: path.to_path_buf(), source })?;
    let mut buf = Vec::with_capacity(cloud.len() * 16);
    for (i, p) in cloud.positions.iter().enumerate() {
        for v in p {
            buf.extend((v as f32).to_le_bytes());
        }
        buf.extend(cloud.intensity.as_ref().map(|v| v[i]).unwrap_or(0.0).to_le_bytes());
    }
    write_atomic(path, |w| {
        w.write_all(&buf).map_err(|source| IoError::Os { path: path.to_path_buf(), source })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() -> Result<(), IoError> {
        let dir = tempfile::tempdir().map_err(|source| IoError::Os { path: "tmp".into(), source })?;
        let path = dir.path().join("000000.bin");
        let mut c = PointCloud::from_positions(
            CloudFrame::Sensor(FrameId::Lidar(0)),
            vec![[1.5, -2.25, 0.125], [10.0, 20.0, -1.0]],
        );
        c.intensity = Some(vec![0.5, 0.0625]);
        write_kitti_bin(&path, &c)?;
        assert_eq!(read_kitti_bin(&path, FrameId::Lidar(0))?, c);
        let bytes = std::fs::read(&path).map_err(|source| IoError::Os { path: path.clone(), source })?;
        std::fs::write(&path, &bytes[..20]).map_err(|source| IoError::Os { path: path.clone(), source })?;
        assert!(matches!(read_kitti_bin(&path, FrameId::Lidar(0)), Err(IoError::Truncated { .. })));
        Ok(())
    }
}
