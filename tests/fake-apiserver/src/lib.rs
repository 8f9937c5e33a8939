pub fn placeholder() {}
pub mod admission;
pub mod faults;
