//! Camera models: pinhole with Brown–Conrady distortion (OpenCV's 5-parameter model) and
//! equidistant fisheye (Kannala–Brandt, OpenCV's `fisheye` model). Camera frame: x right,
//! y down, z forward (computer-vision axes).

use nalgebra::Vector3;
use serde::{Deserialize, Serialize};

/// Lens distortion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "model")]
pub enum Distortion {
    /// Ideal pinhole.
    None,
    /// Brown–Conrady: radial k1 k2 k3, tangential p1 p2 (OpenCV order k1 k2 p1 p2 k3).
    BrownConrady {
        /// Radial r².
        k1: f64,
        /// Radial r⁴.
        k2: f64,
        /// Tangential.
        p1: f64,
        /// Tangential.
        p2: f64,
        /// Radial r⁶.
        k3: f64,
    },
    /// Equidistant fisheye: θd = θ (1 + k1 θ² + k2 θ⁴ + k3 θ⁶ + k4 θ⁸).
    KannalaBrandt {
        /// θ².
        k1: f64,
        /// θ⁴.
        k2: f64,
        /// θ⁶.
        k3: f64,
        /// θ⁸.
        k4: f64,
    },
}

impl Distortion {
    /// Coefficients in OpenCV order.
    pub fn coefficients(&self) -> Vec<f64> {
        match *self {
            Distortion::None => vec![],
            Distortion::BrownConrady { k1, k2, p1, p2, k3 } => vec![k1, k2, p1, p2, k3],
            Distortion::KannalaBrandt { k1, k2, k3, k4 } => vec![k1, k2, k3, k4],
        }
    }
}

/// Intrinsics of one camera, pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CameraIntrinsics {
    /// Image width, px.
    pub width: u32,
    /// Image height, px.
    pub height: u32,
    /// Focal length x, px.
    pub fx: f64,
    /// Focal length y, px.
    pub fy: f64,
    /// Principal point x, px.
    pub cx: f64,
    /// Principal point y, px.
    pub cy: f64,
    /// Distortion.
    pub distortion: Distortion,
}

impl CameraIntrinsics {
    /// Distorts normalised coordinates (x, y) = (X/Z, Y/Z); fisheye handles any Z > 0.
    pub fn distort(&self, x: f64, y: f64) -> [f64; 2] {
        match self.distortion {
            Distortion::None => [x, y],
            Distortion::BrownConrady { k1, k2, p1, p2, k3 } => {
                let r2 = x * x + y * y;
                let radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3));
                [
                    x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x),
                    y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y,
                ]
            }
            Distortion::KannalaBrandt { k1, k2, k3, k4 } => {
                let r = (x * x + y * y).sqrt();
                if r < 1e-12 {
                    return [x, y];
                }
                let th = r.atan();
                let t2 = th * th;
                let thd = th * (1.0 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))));
                [x * thd / r, y * thd / r]
            }
        }
    }

    /// Pixel of a point in the camera frame; `None` behind the camera.
    pub fn project(&self, p: &Vector3<f64>) -> Option<[f64; 2]> {
        if p.z <= 1e-9 {
            return None;
        }
        let [xd, yd] = self.distort(p.x / p.z, p.y / p.z);
        Some([self.fx * xd + self.cx, self.fy * yd + self.cy])
    }

    /// Normalised undistorted coordinates of a pixel (iterative inverse of [`Self::distort`]).
    pub fn undistort(&self, u: f64, v: f64) -> [f64; 2] {
        let xd = (u - self.cx) / self.fx;
        let yd = (v - self.cy) / self.fy;
        let (mut x, mut y) = (xd, yd);
        for _ in 0..50 {
            let [dx, dy] = self.distort(x, y);
            let (ex, ey) = (dx - xd, dy - yd);
            if ex.abs() < 1e-12 && ey.abs() < 1e-12 {
                break;
            }
            // Numerical Jacobian of the distortion (2×2) for a Newton step.
            let h = 1e-7;
            let [ax, ay] = self.distort(x + h, y);
            let [bx, by] = self.distort(x, y + h);
            let (j11, j21, j12, j22) = ((ax - dx) / h, (ay - dy) / h, (bx - dx) / h, (by - dy) / h);
            let det = j11 * j22 - j12 * j21;
            if det.abs() < 1e-15 {
                break;
            }
            x -= (j22 * ex - j12 * ey) / det;
            y -= (-j21 * ex + j11 * ey) / det;
        }
        [x, y]
    }

    /// Unit viewing ray of a pixel, camera frame.
    pub fn unproject(&self, u: f64, v: f64) -> Vector3<f64> {
        let [x, y] = self.undistort(u, v);
        Vector3::new(x, y, 1.0).normalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_unproject_round_trip() {
        for distortion in [
            Distortion::None,
            Distortion::BrownConrady { k1: -0.27, k2: -0.04, p1: 0.0018, p2: -0.0003, k3: 0.24 },
            Distortion::KannalaBrandt { k1: 0.05, k2: -0.01, k3: 0.002, k4: -0.0003 },
        ] {
            let cam = CameraIntrinsics {
                width: 640,
                height: 480,
                fx: 536.0,
                fy: 536.0,
                cx: 342.3,
                cy: 235.6,
                distortion,
            };
            for &(u, v) in &[(10.0, 12.0), (320.0, 240.0), (600.0, 450.0)] {
                let ray = cam.unproject(u, v);
                let px = cam.project(&(ray * 7.0)).expect("in front");
                assert!(
                    (px[0] - u).abs() < 1e-6 && (px[1] - v).abs() < 1e-6,
                    "{distortion:?}: ({u},{v}) -> {px:?}"
                );
            }
        }
    }
}
