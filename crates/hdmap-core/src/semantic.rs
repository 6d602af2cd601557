//! Per-point semantic classes, numbered as SemanticKITTI numbers them (so `.label` files
//! interoperate with that ecosystem): class in the low 16 bits of a label, instance id in the
//! high 16 bits, and separate "moving-*" classes for dynamic objects.

use serde::{Deserialize, Serialize};

/// A semantic class with its SemanticKITTI id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u16)]
#[allow(missing_docs)]
pub enum SemanticClass {
    Unlabeled = 0,
    Car = 10,
    Bicycle = 11,
    Truck = 18,
    OtherVehicle = 20,
    Person = 30,
    Bicyclist = 31,
    Road = 40,
    Parking = 44,
    Sidewalk = 48,
    OtherGround = 49,
    Building = 50,
    Fence = 51,
    LaneMarking = 60,
    Vegetation = 70,
    Trunk = 71,
    Terrain = 72,
    Pole = 80,
    TrafficSign = 81,
    MovingCar = 252,
    MovingBicyclist = 253,
    MovingPerson = 254,
    MovingTruck = 258,
}

impl SemanticClass {
    /// Every class, in id order.
    pub const ALL: [SemanticClass; 23] = [
        SemanticClass::Unlabeled,
        SemanticClass::Car,
        SemanticClass::Bicycle,
        SemanticClass::Truck,
        SemanticClass::OtherVehicle,
        SemanticClass::Person,
        SemanticClass::Bicyclist,
        SemanticClass::Road,
        SemanticClass::Parking,
        SemanticClass::Sidewalk,
        SemanticClass::OtherGround,
        SemanticClass::Building,
        SemanticClass::Fence,
        SemanticClass::LaneMarking,
        SemanticClass::Vegetation,
        SemanticClass::Trunk,
        SemanticClass::Terrain,
        SemanticClass::Pole,
        SemanticClass::TrafficSign,
        SemanticClass::MovingCar,
        SemanticClass::MovingBicyclist,
        SemanticClass::MovingPerson,
        SemanticClass::MovingTruck,
    ];

    /// The SemanticKITTI id.
    pub fn id(self) -> u16 {
        self as u16
    }

    /// The class of an id, `None` for ids hdmap does not use.
    pub fn from_id(id: u16) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.id() == id)
    }

    /// True for the "moving-*" classes.
    pub fn is_moving(self) -> bool {
        self.id() >= 252
    }

    /// True for things that can move (cars, trucks, people, cyclists), parked or not.
    pub fn is_movable(self) -> bool {
        matches!(
            self,
            SemanticClass::Car
                | SemanticClass::Bicycle
                | SemanticClass::Truck
                | SemanticClass::OtherVehicle
                | SemanticClass::Person
                | SemanticClass::Bicyclist
        ) || self.is_moving()
    }

    /// The moving variant of a movable class (itself otherwise).
    pub fn moving(self) -> Self {
        match self {
            SemanticClass::Car | SemanticClass::OtherVehicle => SemanticClass::MovingCar,
            SemanticClass::Truck => SemanticClass::MovingTruck,
            SemanticClass::Person => SemanticClass::MovingPerson,
            SemanticClass::Bicyclist | SemanticClass::Bicycle => SemanticClass::MovingBicyclist,
            other => other,
        }
    }
}

/// Packs a class and instance id into a SemanticKITTI label.
pub fn pack_label(class: SemanticClass, instance: u16) -> u32 {
    class.id() as u32 | (instance as u32) << 16
}

/// Splits a SemanticKITTI label into (class id, instance id).
pub fn unpack_label(label: u32) -> (u16, u16) {
    ((label & 0xFFFF) as u16, (label >> 16) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_moving_classes_are_the_semantickitti_ones() {
        for c in SemanticClass::ALL {
            assert_eq!(SemanticClass::from_id(c.id()), Some(c));
            let l = pack_label(c, 4321);
            assert_eq!(unpack_label(l), (c.id(), 4321));
        }
        assert_eq!(SemanticClass::Car.moving().id(), 252);
        assert_eq!(SemanticClass::Person.moving().id(), 254);
        assert!(SemanticClass::Car.is_movable() && !SemanticClass::Car.is_moving());
        assert!(!SemanticClass::Road.is_movable());
    }
}
