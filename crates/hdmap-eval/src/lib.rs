//! # hdmap-eval — metrics of hdmap outputs against ground truth
//!
//! * [`layout`]: vector road-layout precision / recall / F1 per marking class at a distance
//!   tolerance, position and height errors, and lane-topology edge F1.

pub mod layout;
