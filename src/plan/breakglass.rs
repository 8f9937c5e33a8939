//! Break-glass failover without Git: the `DRPlanOverride` resource (`drgitops.dev/v1alpha1`, namespaced) and the
//! pure decisions around it.
//!
//! In: a live DRPlan's spec, a DRPlanOverride naming it, and the primary the git source last read for the plan.
//! Out: the plan's spec with the override in effect (the target primary and a declared disaster, as
//! `drgitops failover --disaster` would commit it), whether a git revision is held back or ends the override, and
//! the words the plan's status, Events and logs use.
//!
//! A separate resource, not a field of the DRPlan, so RBAC can grant "may break glass" (create DRPlanOverrides in
//! a namespace) without "may edit DRPlans". Who asked is `spec.requestedBy`: `drgitops failover --break-glass` fills
//! it with the name the API server authenticated (a SelfSubjectReview), and the shipped ValidatingAdmissionPolicy
//! refuses an override whose `requestedBy` is not the requesting user's name, so the field is the API server's word,
//! not the client's.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::types::{DRPlanSpec, Disaster, Mode};

/// Annotation on a DRPlan whose spec a break-glass override set: the override's name.
pub const OVERRIDE_ANNOTATION: &str = "drgitops.dev/break-glass";

/// Field manager of the reconciler's writes of an override into a DRPlan's spec (visible in `managedFields`).
pub const OVERRIDE_FIELD_MANAGER: &str = "drgitops-break-glass";

/// The status condition a plan under an override carries.
pub const OVERRIDE_CONDITION: &str = "BreakGlass";

/// A failover of one DRPlan on this cluster, asked for without Git: the reconciler makes `spec.primary` the
/// primary as a declared disaster, and holds back git revisions that disagree until Git holds the same primary.
// Each printer column repeats `type_ = "string"`, which clippy mistakes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "drgitops.dev",
    version = "v1alpha1",
    kind = "DRPlanOverride",
    plural = "drplanoverrides",
    singular = "drplanoverride",
    shortname = "drpo",
    namespaced,
    doc = "A break-glass failover of a DRPlan in this namespace, made while Git is unreachable: the reconciler \
           fails the plan over to spec.primary as a declared disaster and removes this object once Git holds the \
           same primary.",
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.plan"),
    printcolumn(name = "Primary", type_ = "string", json_path = ".spec.primary"),
    printcolumn(
        name = "Requested-By",
        type_ = "string",
        json_path = ".spec.requestedBy"
    ),
    printcolumn(name = "Reason", type_ = "string", json_path = ".spec.reason"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct DRPlanOverrideSpec {
    /// The DRPlan (`metadata.name`, in this namespace) to fail over.
    #[schemars(length(min = 1))]
    pub plan: String,
    /// The cluster domain that becomes primary; one of the plan's domains.
    #[schemars(length(min = 1))]
    pub primary: String,
    /// Why Git could not be used: shown in the plan's status, its Events and the reconciler's log.
    #[schemars(length(min = 1))]
    pub reason: String,
    /// The user who asked, as the API server authenticated them (the shipped ValidatingAdmissionPolicy refuses
    /// any other value).
    #[schemars(length(min = 1))]
    pub requested_by: String,
}

/// An override standing on this cluster, as the reconciler read it.
#[derive(Clone, Debug, PartialEq)]
pub struct Standing {
    pub namespace: String,
    pub name: String,
    /// `metadata.creationTimestamp`: when it was created, as the API server recorded it.
    pub created_at: String,
    pub spec: DRPlanOverrideSpec,
}

impl Standing {
    /// The plan it overrides, as `namespace/name`.
    pub fn plan_id(&self) -> String {
        format!("{}/{}", self.namespace, self.spec.plan)
    }

    /// The revision the plan's transition is recorded under while it stands.
    pub fn revision(&self) -> String {
        revision_token(&self.namespace, &self.name, &self.created_at)
    }
}

/// The override that stands for each plan (`namespace/name`): of several for one plan, the newest (a later
/// decision replaces an earlier one; on equal times, the last by name).
pub fn by_plan(overrides: Vec<Standing>) -> BTreeMap<String, Standing> {
    let mut out: BTreeMap<String, Standing> = BTreeMap::new();
    for ov in overrides {
        let id = ov.plan_id();
        let newer = out
            .get(&id)
            .is_none_or(|old| (&ov.created_at, &ov.name) > (&old.created_at, &old.name));
        if newer {
            out.insert(id, ov);
        }
    }
    out
}

/// The revision token a plan's transition is recorded under while an override is in effect (instead of a commit).
/// It starts with 8 hex digits of a hash of the rest, because the names derived from a revision (the final
/// Migration's, a ClusterDomainUpdate's) take its first characters and must differ between two overrides.
pub fn revision_token(namespace: &str, name: &str, created_at: &str) -> String {
    let what = format!("break-glass:{namespace}/{name}@{created_at}");
    let hash = what.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:08x}.{what}", hash >> 32)
}

/// The disaster declaration's message: who broke glass and why.
pub fn declaration_message(spec: &DRPlanOverrideSpec) -> String {
    format!(
        "break-glass failover by {}: {}",
        spec.requested_by, spec.reason
    )
}

/// Why an override cannot be carried out on a plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error(
        "spec.primary: {target:?} is not among the plan's domains [{domains}]; delete the override and create one \
         naming a domain of the plan"
    )]
    UnknownDomain { target: String, domains: String },
    #[error(
        "the plan has no domain other than {target:?} to declare lost; add the peer's domain to the plan"
    )]
    NoPeer { target: String },
}

/// The plan's spec with the override in effect: `primary` is the target and `failover.disaster` declares the
/// primary it replaces lost (on a plan already primary there, the declaration it holds, else the other domain),
/// with `declared_at` (the override's creation time, recorded by the API server) and who and why. In metro mode the
/// lost domain is also marked inactive and the target active, as `drgitops failover --disaster --deactivate` commits.
/// `data_as_of` is the last migration towards the target this cluster knows of.
pub fn overridden_spec(
    plan: &DRPlanSpec,
    ov: &DRPlanOverrideSpec,
    declared_at: &str,
    data_as_of: Option<&str>,
) -> Result<DRPlanSpec, OverrideError> {
    let target = ov.primary.as_str();
    if !plan.domains.iter().any(|d| d.name == target) {
        return Err(OverrideError::UnknownDomain {
            target: target.into(),
            domains: plan
                .domains
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let lost = if plan.primary != target {
        plan.primary.clone()
    } else if let Some(d) = plan.disaster().filter(|d| d.lost != target) {
        d.lost.clone()
    } else {
        plan.domains
            .iter()
            .find(|d| d.name != target)
            .map(|d| d.name.clone())
            .ok_or_else(|| OverrideError::NoPeer {
                target: target.into(),
            })?
    };
    let mut spec = plan.clone();
    spec.primary = target.to_string();
    if spec.mode == Mode::Metro {
        for domain in &mut spec.domains {
            if domain.name == lost {
                domain.active = Some(false);
            } else if domain.name == target {
                domain.active = Some(true);
            }
        }
    }
    let failover = spec.failover.get_or_insert_with(Default::default);
    failover.disaster = Some(Disaster {
        lost,
        declared_at: Some(declared_at.to_string()),
        message: Some(declaration_message(ov)),
        data_as_of: data_as_of.map(str::to_string),
    });
    Ok(spec)
}

/// Whether `plan` already has the override in effect (so nothing needs writing): the target is primary and a
/// disaster other than the target is declared.
pub fn in_effect(plan: &DRPlanSpec, ov: &DRPlanOverrideSpec) -> bool {
    plan.primary == ov.primary && plan.disaster().is_some_and(|d| d.lost != ov.primary)
}

/// What the git source's view of a plan means for an override of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitVerdict {
    /// The git source has not read the plan (Git unreachable since the start, or the plan is not in Git).
    Unknown,
    /// Git's revision names another primary: it is not applied to the plan while the override stands.
    Held { revision: String, primary: String },
    /// Git holds the same primary: the override has done its work and is removed.
    Agrees { revision: String },
}

/// Judges the git source's last reading of a plan (`(revision, primary)`) against an override's target.
pub fn judge(target: &str, git: Option<(&str, &str)>) -> GitVerdict {
    match git {
        None => GitVerdict::Unknown,
        Some((revision, primary)) if primary == target => GitVerdict::Agrees {
            revision: revision.into(),
        },
        Some((revision, primary)) => GitVerdict::Held {
            revision: revision.into(),
            primary: primary.into(),
        },
    }
}

/// The command that puts the override's decision into Git, ready to copy.
pub fn commit_command(plan: &str, target: &str) -> String {
    format!("drgitops failover --plan {plan} --to {target} --disaster")
}

/// The message of the plan's `BreakGlass` condition (and of the Event when a revision is held back).
pub fn condition_message(
    namespace: &str,
    name: &str,
    ov: &DRPlanOverrideSpec,
    created_at: &str,
    verdict: &GitVerdict,
) -> String {
    let head = format!(
        "DRPlanOverride {namespace}/{name} by {} at {created_at} makes {} primary ({}); ",
        ov.requested_by, ov.primary, ov.reason
    );
    let command = commit_command(&ov.plan, &ov.primary);
    let git = match verdict {
        GitVerdict::Unknown => "Git has not been read since; ".to_string(),
        GitVerdict::Held { revision, primary } => format!(
            "git revision {} (primary {primary}) is not applied to this plan; ",
            short(revision)
        ),
        GitVerdict::Agrees { revision } => {
            return format!(
                "{head}Git holds the same primary at revision {}: the override is removed",
                short(revision)
            );
        }
    };
    format!(
        "{head}{git}commit and push `{command}` so Git holds the same primary: then the override is removed and \
         Git applies again"
    )
}

fn short(revision: &str) -> &str {
    revision.get(..12).unwrap_or(revision)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(mode: &str, primary: &str, disaster: Option<&str>) -> DRPlanSpec {
        let mut spec = json!({"mode": mode, "primary": primary,
            "domains": [{"name": "east"}, {"name": "west"}],
            "clusterPair": {"name": "remotecluster", "peerKubeconfigSecret": {"name": "peer"}},
            "failover": {"peerStopTimeoutSeconds": 60}});
        if let Some(lost) = disaster {
            spec["failover"]["disaster"] = json!({"lost": lost});
        }
        serde_json::from_value(spec).unwrap()
    }

    fn ov(primary: &str) -> DRPlanOverrideSpec {
        DRPlanOverrideSpec {
            plan: "mysql".into(),
            primary: primary.into(),
            reason: "east is down, git.example.com too".into(),
            requested_by: "alice@example.com".into(),
        }
    }

    #[test]
    fn the_override_declares_the_old_primary_lost() {
        let spec = overridden_spec(
            &plan("async", "east", None),
            &ov("west"),
            "2026-12-05T02:00:00Z",
            Some("2026-12-05T01:45:00Z"),
        )
        .unwrap();
        assert_eq!(spec.primary, "west");
        let disaster = spec.disaster().unwrap();
        assert_eq!(disaster.lost, "east");
        assert_eq!(
            disaster.declared_at.as_deref(),
            Some("2026-12-05T02:00:00Z")
        );
        assert_eq!(disaster.data_as_of.as_deref(), Some("2026-12-05T01:45:00Z"));
        assert_eq!(
            disaster.message.as_deref(),
            Some("break-glass failover by alice@example.com: east is down, git.example.com too")
        );
        assert_eq!(
            spec.failover.as_ref().unwrap().peer_stop_timeout_seconds,
            Some(60),
            "the rest of spec.failover stays"
        );
        assert!(in_effect(&spec, &ov("west")));
        assert!(!in_effect(&plan("async", "east", None), &ov("west")));
        // A primary taken by a commit without a declaration is not the override in effect.
        assert!(!in_effect(&plan("async", "west", None), &ov("west")));
        assert!(
            crate::plan::validate::validate(
                &crate::plan::DRPlan::new("mysql", spec.clone()),
                "kube-system"
            )
            .iter()
            .all(|e| !e.field.starts_with("spec.failover")),
            "the declaration reads as a valid one"
        );
    }

    #[test]
    fn on_a_plan_already_primary_there_the_other_domain_is_lost() {
        let spec = overridden_spec(&plan("async", "west", None), &ov("west"), "t", None).unwrap();
        assert_eq!(spec.disaster().unwrap().lost, "east");
        let spec =
            overridden_spec(&plan("async", "west", Some("east")), &ov("west"), "t", None).unwrap();
        assert_eq!(spec.disaster().unwrap().lost, "east");
    }

    #[test]
    fn metro_fences_the_lost_domain() {
        let spec = overridden_spec(&plan("metro", "east", None), &ov("west"), "t", None).unwrap();
        let active: Vec<(String, Option<bool>)> = spec
            .domains
            .iter()
            .map(|d| (d.name.clone(), d.active))
            .collect();
        assert_eq!(
            active,
            [("east".into(), Some(false)), ("west".into(), Some(true))]
        );
    }

    #[test]
    fn an_unknown_target_is_refused_with_the_plans_domains() {
        let err =
            overridden_spec(&plan("async", "east", None), &ov("north"), "t", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.primary: \"north\" is not among the plan's domains [east, west]; delete the override and create \
             one naming a domain of the plan"
        );
    }

    #[test]
    fn a_git_revision_with_another_primary_is_held_and_one_with_the_same_ends_the_override() {
        assert_eq!(judge("west", None), GitVerdict::Unknown);
        assert_eq!(
            judge("west", Some(("0123456789abcdef", "east"))),
            GitVerdict::Held {
                revision: "0123456789abcdef".into(),
                primary: "east".into()
            }
        );
        assert_eq!(
            judge("west", Some(("fedcba9876543210", "west"))),
            GitVerdict::Agrees {
                revision: "fedcba9876543210".into()
            }
        );
    }

    #[test]
    fn the_newest_override_of_a_plan_stands() {
        let standing = |name: &str, at: &str, primary: &str| Standing {
            namespace: "mysql".into(),
            name: name.into(),
            created_at: at.into(),
            spec: ov(primary),
        };
        let plans = by_plan(vec![
            standing("b", "2026-12-05T02:00:00Z", "west"),
            standing("a", "2026-12-05T02:05:00Z", "east"),
        ]);
        assert_eq!(plans.len(), 1);
        assert_eq!(plans["mysql/mysql"].spec.primary, "east");
        let revision = plans["mysql/mysql"].revision();
        assert!(
            revision.ends_with(".break-glass:mysql/a@2026-12-05T02:05:00Z"),
            "{revision}"
        );
        assert!(revision[..8].chars().all(|c| c.is_ascii_hexdigit()));
        let other = revision_token("mysql", "a", "2026-12-05T02:06:00Z");
        assert_ne!(
            crate::plan::transition::domain_update_name("mysql", "east", false, &revision),
            crate::plan::transition::domain_update_name("mysql", "east", false, &other),
            "two overrides never share a ClusterDomainUpdate"
        );
        assert_ne!(
            crate::plan::transition::final_migration_name("mysql", &revision),
            crate::plan::transition::final_migration_name("mysql", &other)
        );
    }

    #[test]
    fn the_condition_prints_the_commit_to_push() {
        let held = GitVerdict::Held {
            revision: "0123456789abcdef".into(),
            primary: "east".into(),
        };
        let message =
            condition_message("mysql", "mysql", &ov("west"), "2026-12-05T02:00:00Z", &held);
        assert_eq!(
            message,
            "DRPlanOverride mysql/mysql by alice@example.com at 2026-12-05T02:00:00Z makes west primary (east is \
             down, git.example.com too); git revision 0123456789ab (primary east) is not applied to this plan; \
             commit and push `drgitops failover --plan mysql --to west --disaster` so Git holds the same primary: \
             then the override is removed and Git applies again"
        );
        let unknown = condition_message("mysql", "mysql", &ov("west"), "t", &GitVerdict::Unknown);
        assert!(unknown.contains("Git has not been read since"), "{unknown}");
    }
}
