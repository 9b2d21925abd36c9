//! The generators of the differential test of the XDP program
//! (`tests/tests/xdp_diff.rs`, against [`crate::xdp_model`]): a seeded
//! random number generator, the addresses of a run, random frames, random
//! map states written through the data plane, and the report of a
//! disagreement.

pub mod frames;
pub mod report;
pub mod rng;
pub mod state;
pub mod universe;
