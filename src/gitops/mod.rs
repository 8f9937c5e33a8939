//! The GitOps reconciler (`drgitops reconcile`) and `drgitops render`.
//!
//! Pure parts: [`manifests`] (a commit's files → DRPlans or errors naming file, line and field), [`hooks`] (push
//! signatures), [`diff`] (the dry-run diff). IO shell: [`source`] (git2: incremental fetch into a bare cache,
//! reading a revision), [`sync`] (commit → DRPlans applied and pruned by inventory), [`apply`] (server-side apply
//! as `drgitops`, ownership-checked delete), [`controller`] (per plan: role → inputs → apply → prune → status),
//! [`leader`] (Lease), [`runner`] (pass loop, admin port), [`metrics`], and [`cli`] (flags and exit codes).
//! Role transitions (failover and failback) plug into [`controller::PlanController::reconcile_plan`] between the
//! role decision and the steady-state apply.

pub mod apply;
pub mod cli;
pub mod controller;
pub mod diff;
pub mod hooks;
pub mod leader;
pub mod manifests;
pub mod metrics;
pub mod runner;
pub mod source;
pub mod sync;
