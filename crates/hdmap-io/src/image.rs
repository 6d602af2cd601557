//! Camera images and previews through the `image` crate (PNG, JPEG, TIFF).

use std::path::Path;

use image::DynamicImage;

use crate::IoError;
use crate::fsutil::{check_input_file, write_atomic};

/// Reads an image, failing with the file named when it is missing, empty or undecodable.
pub fn read_image(path: &Path) -> Result<DynamicImage, IoError> {
    check_input_file(path)?;
    image::ImageReader::open(path)
        .map_err(|source| IoError::Os { path: path.to_path_buf(), source })?
        .with_guessed_format()
        .map_err(|source| IoError::Os { path: path.to_path_buf(), source })?
        .decode()
        .map_err(|source| IoError::Image { path: path.to_path_buf(), source })
}

/// Writes an image as PNG, atomically.
pub fn write_png(path: &Path, img: &DynamicImage) -> Result<(), IoError> {
    write_atomic(path, |w| {
        img.write_to(w, image::ImageFormat::Png)
            .map_err(|source| IoError::Image { path: path.to_path_buf(), source })
    })
}
