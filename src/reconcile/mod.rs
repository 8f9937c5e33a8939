//! DRPlans → the Stork objects this cluster's role needs, role transitions, and the plans' status.
//!
//! [`controller`] runs one pass per plan (role → inputs → apply → prune → status); [`transition`] carries out a
//! failover or failback step by step as [`crate::plan::transition`] plans it; [`status`] is the one writer of
//! DRPlan status both use; [`breakglass`] reads the break-glass overrides and ends them; [`runner`] is the process around them: the pass loop, the leader lease, the git source
//! when configured, and the admin port with the push receiver.
//!
//! Depends on `plan`, `stork`, `cluster` (apply, diff), `source` and `runtime`; imported only by `cli`.

pub mod breakglass;
pub mod controller;
pub mod runner;
pub mod status;
pub mod transition;
