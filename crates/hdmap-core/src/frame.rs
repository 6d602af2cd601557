//! Coordinate frame identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;

/// A named coordinate frame of the vehicle rig or of the map.
///
/// Displayed and parsed as `world`, `vehicle`, `imu`, `gnss`, `lidar0`, `camera2`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FrameId {
    /// The map frame: a projected CRS, offset by the map's [`crate::GeoOrigin`].
    World,
    /// The vehicle body frame (x forward, y left, z up; origin on the rear axle at ground level
    /// unless a rig file says otherwise).
    Vehicle,
    /// The inertial measurement unit.
    Imu,
    /// The GNSS antenna / INS solution frame.
    Gnss,
    /// LiDAR number `n` (0-based).
    Lidar(u8),
    /// Camera number `n` (0-based); computer-vision axes (x right, y down, z forward).
    Camera(u8),
}

impl fmt::Display for FrameId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameId::World => write!(f, "world"),
            FrameId::Vehicle => write!(f, "vehicle"),
            FrameId::Imu => write!(f, "imu"),
            FrameId::Gnss => write!(f, "gnss"),
            FrameId::Lidar(n) => write!(f, "lidar{n}"),
            FrameId::Camera(n) => write!(f, "camera{n}"),
        }
    }
}

impl FromStr for FrameId {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || CoreError::Parse { what: "frame id", text: s.to_string() };
        let indexed = |prefix: &str| -> Option<Result<u8, CoreError>> {
            s.strip_prefix(prefix).map(|rest| rest.parse::<u8>().map_err(|_| err()))
        };
        match s {
            "world" => Ok(FrameId::World),
            "vehicle" => Ok(FrameId::Vehicle),
            "imu" => Ok(FrameId::Imu),
            "gnss" => Ok(FrameId::Gnss),
            _ => {
                if let Some(n) = indexed("lidar") {
                    Ok(FrameId::Lidar(n?))
                } else if let Some(n) = indexed("camera") {
                    Ok(FrameId::Camera(n?))
                } else {
                    Err(err())
                }
            }
        }
    }
}

impl TryFrom<String> for FrameId {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<FrameId> for String {
    fn from(f: FrameId) -> String {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_parse_round_trip() {
        for f in [
            FrameId::World,
            FrameId::Vehicle,
            FrameId::Imu,
            FrameId::Gnss,
            FrameId::Lidar(0),
            FrameId::Lidar(3),
            FrameId::Camera(12),
        ] {
            assert_eq!(f.to_string().parse::<FrameId>().ok(), Some(f));
        }
        assert!("lidar".parse::<FrameId>().is_err());
        assert!("camera-1".parse::<FrameId>().is_err());
        assert!("Lidar0".parse::<FrameId>().is_err());
    }
}
