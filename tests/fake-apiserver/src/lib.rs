pub fn placeholder() {}
pub mod patch;
pub mod ssa;
