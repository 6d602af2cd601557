//! A drive's camera folder: the images, `images.csv` (`stamp_ns,image`: exposure stamp on the
//! camera's clock, file name relative to the folder) and `camera.toml` (the camera's
//! intrinsics, `hdmap_core::CameraIntrinsics`).

use std::path::{Path, PathBuf};

use hdmap_core::CameraIntrinsics;

use crate::IoError;

/// Stamp list file of a camera folder.
pub const IMAGES_CSV: &str = "images.csv";
/// Intrinsics file of a camera folder.
pub const CAMERA_TOML: &str = "camera.toml";

/// One image of a camera folder.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    /// Exposure stamp, ns (camera clock).
    pub stamp_ns: i64,
    /// File name relative to the folder.
    pub name: String,
    /// Full path.
    pub path: PathBuf,
}

fn bad(path: &Path, detail: impl Into<String>) -> IoError {
    IoError::Format { path: path.to_path_buf(), format: "camera folder", detail: detail.into() }
}

/// Reads a camera folder's intrinsics and image list (stamps strictly increasing, every
/// image present).
pub fn read_camera_folder(dir: &Path) -> Result<(CameraIntrinsics, Vec<ImageRecord>), IoError> {
    let cam_path = dir.join(CAMERA_TOML);
    let text = std::fs::read_to_string(&cam_path)
        .map_err(|source| IoError::Os { path: cam_path.clone(), source })?;
    let k: CameraIntrinsics = toml::from_str(&text).map_err(|e| bad(&cam_path, e.to_string()))?;
    if k.width == 0 || k.height == 0 || !(k.fx > 0.0 && k.fy > 0.0) || !(k.cx.is_finite() && k.cy.is_finite())
    {
        return Err(bad(
            &cam_path,
            format!("size {}×{} and focal lengths {} {} must be positive", k.width, k.height, k.fx, k.fy),
        ));
    }
    let list = dir.join(IMAGES_CSV);
    let text = std::fs::read_to_string(&list).map_err(|source| IoError::Os { path: list.clone(), source })?;
    if text.lines().next().map(str::trim) != Some("stamp_ns,image") {
        return Err(bad(&list, "the first line must be the header `stamp_ns,image`"));
    }
    let mut out: Vec<ImageRecord> = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let (s, name) = line
            .split_once(',')
            .ok_or_else(|| bad(&list, format!("line {}: expected stamp_ns,image", i + 1)))?;
        let stamp_ns: i64 =
            s.trim().parse().map_err(|_| bad(&list, format!("line {}: stamp `{s}`", i + 1)))?;
        let name = name.trim().to_string();
        if name.is_empty() || name.starts_with('/') || name.split('/').any(|c| c == "..") {
            return Err(bad(
                &list,
                format!("line {}: image `{name}` must be a path inside the folder", i + 1),
            ));
        }
        if out.last().is_some_and(|r| r.stamp_ns >= stamp_ns) {
            return Err(bad(&list, format!("line {}: stamps must increase", i + 1)));
        }
        let path = dir.join(&name);
        if !path.is_file() {
            return Err(bad(&list, format!("line {}: {} is missing", i + 1, path.display())));
        }
        out.push(ImageRecord { stamp_ns, name, path });
    }
    if out.is_empty() {
        return Err(bad(&list, "no images"));
    }
    Ok((k, out))
}

/// An image of a camera folder as grey levels, refused when its size is not the camera's.
pub fn read_grey(record: &ImageRecord, intrinsics: &CameraIntrinsics) -> Result<image::GrayImage, IoError> {
    let img = crate::image::read_image(&record.path)?.to_luma8();
    if img.dimensions() != (intrinsics.width, intrinsics.height) {
        return Err(bad(
            &record.path,
            format!(
                "{}×{} px, but the camera ({CAMERA_TOML}) is {}×{}",
                img.width(),
                img.height(),
                intrinsics.width,
                intrinsics.height
            ),
        ));
    }
    Ok(img)
}

/// Writes `images.csv` and `camera.toml` of a camera folder (atomically, each).
pub fn write_camera_folder(
    dir: &Path,
    intrinsics: &CameraIntrinsics,
    images: &[(i64, String)],
) -> Result<(), IoError> {
    let mut rows = String::from("stamp_ns,image\n");
    for (stamp_ns, name) in images {
        rows.push_str(&format!("{stamp_ns},{name}\n"));
    }
    crate::fsutil::write_bytes_atomic(&dir.join(IMAGES_CSV), rows.as_bytes())?;
    let cam = dir.join(CAMERA_TOML);
    let text = toml::to_string(intrinsics).map_err(|e| bad(&cam, e.to_string()))?;
    crate::fsutil::write_bytes_atomic(&cam, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdmap_core::Distortion;

    fn folder(rows: &str, images: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = CameraIntrinsics {
            width: 4,
            height: 3,
            fx: 5.0,
            fy: 5.0,
            cx: 2.0,
            cy: 1.5,
            distortion: Distortion::None,
        };
        write_camera_folder(dir.path(), &k, &[]).expect("write");
        std::fs::write(dir.path().join(IMAGES_CSV), format!("stamp_ns,image\n{rows}")).expect("csv");
        for i in images {
            std::fs::write(dir.path().join(i), b"png").expect("image");
        }
        dir
    }

    #[test]
    fn a_folder_round_trips() {
        let dir = folder("10,a.png\n20,b.png\n", &["a.png", "b.png"]);
        let (k, r) = read_camera_folder(dir.path()).expect("read");
        assert_eq!((k.width, k.height, k.fx), (4, 3, 5.0));
        assert_eq!(
            r.iter().map(|r| (r.stamp_ns, r.name.as_str())).collect::<Vec<_>>(),
            [(10, "a.png"), (20, "b.png")]
        );
    }

    #[test]
    fn broken_lists_name_the_file_and_the_problem() {
        for (rows, images, expect) in [
            ("20,a.png\n10,b.png\n", &["a.png", "b.png"][..], "stamps must increase"),
            ("10,a.png\n20,b.png\n", &["a.png"][..], "missing"),
            ("10,../a.png\n", &[][..], "inside the folder"),
            ("ten,a.png\n", &["a.png"][..], "stamp `ten`"),
            ("", &[][..], "no images"),
        ] {
            let dir = folder(rows, images);
            let e = read_camera_folder(dir.path()).expect_err(expect).to_string();
            assert!(e.contains(expect) && e.contains(IMAGES_CSV), "{e}");
        }
    }
}
