//! A LiDAR scan from any of the point-cloud formats hdmap reads, chosen by extension.

use std::path::Path;

use hdmap_core::{FrameId, PointCloud};

use crate::IoError;

/// Reads a scan from a PCD, KITTI `.bin` (in the frame of LiDAR 0) or LAS/LAZ file; another
/// extension is refused naming the file.
pub fn read_scan(path: &Path) -> Result<PointCloud, IoError> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("pcd") => Ok(crate::pcd::read_pcd(path)?.cloud),
        Some("bin") => crate::kitti::read_kitti_bin(path, FrameId::Lidar(0)),
        Some("las" | "laz") => Ok(crate::las::read_las(path, |_| {})?.cloud),
        _ => Err(IoError::Unsupported {
            path: path.to_path_buf(),
            detail: "unknown scan format (expected .pcd, .bin, .las or .laz)".into(),
        }),
    }
}
