//! From a git commit to DRPlan objects: fetch, read, parse and validate every plan, then apply them all with
//! server-side apply and prune the plans a previous commit applied and this one no longer has.
//!
//! In: the git source settings and the inventory of plans applied before (a ConfigMap). Out: DRPlans in the
//! cluster (labelled `app.kubernetes.io/managed-by: drgitops`, annotated with revision and file) and the updated
//! [`SourceState`]. Fail closed: one invalid plan anywhere in a commit means nothing from it is applied, and an
//! empty commit (no DRPlan at all) never prunes unless `--allow-empty` says it may (as Argo CD's `allowEmpty`). A
//! branch whose new tip no longer contains the last applied revision (a force push) is refused until someone
//! accepts that tip by annotating the inventory ConfigMap ([`ACCEPT_REWRITE_ANNOTATION`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::{Value, json};

use crate::cluster::apply::{Applier, ApplyError, ObjectKey};
use crate::cluster::diff;
use crate::plan::API_VERSION as DRPLAN_API_VERSION;
use crate::runtime::metrics::{FetchLabels, Metrics, Outcome};
use crate::source::git::{self, GitSourceConfig, ManifestFile, SourceError};
use crate::source::manifests::{self, FieldProblem, ManifestError, PlanDocument};
use crate::source::verify::{self, Refusal, Verification, VerifyError};
use crate::stork::keys::{MANAGED_BY, MANAGED_BY_VALUE, REVISION_ANNOTATION, SOURCE_ANNOTATION};

/// What the git source last did, as the plan controller reports it in each plan's status.
#[derive(Clone, Debug, Default)]
pub struct SourceState {
    /// Whether plans come from the built-in git source (else from Argo CD or Flux).
    pub git: bool,
    /// The last revision the source tried.
    pub attempted_revision: Option<String>,
    /// The last revision whose plans were all valid and applied.
    pub applied_revision: Option<String>,
    /// Why the attempted revision was refused, per affected plan (`namespace/name`); `"*"` affects all plans.
    pub failures: BTreeMap<String, String>,
    /// The break-glass overrides standing on this cluster, by plan (`namespace/name`).
    pub overrides: BTreeMap<String, crate::plan::breakglass::Standing>,
    /// Per plan (`namespace/name`), the revision the git source last read in full and the primary it names there
    /// (applied, or held back by an override).
    pub git_primaries: BTreeMap<String, (String, String)>,
}

impl SourceState {
    /// Why the attempted revision was refused for plan `id` (`namespace/name`), if it was.
    pub fn failure_for(&self, id: &str) -> Option<&String> {
        self.failures.get(id).or_else(|| self.failures.get("*"))
    }
}

/// Name of the ConfigMap that records which DRPlans the reconciler applied.
pub const INVENTORY_NAME: &str = "drgitops-inventory";

/// Annotation on the inventory ConfigMap that accepts one rewritten tip: its value is the full commit id of a tip
/// whose history does not contain the last applied revision.
pub const ACCEPT_REWRITE_ANNOTATION: &str = "drgitops.dev/accept-rewrite";

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("git work was cancelled: {0}")]
    Join(String),
    #[error("revision {revision} is invalid, nothing applied:\n{}", render_errors(.errors))]
    Invalid {
        revision: String,
        errors: Vec<ManifestError>,
    },
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

impl SyncError {
    /// Whether a retry with backoff may help.
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Source(_) | SyncError::Join(_) => true,
            SyncError::Invalid { .. } => false,
            SyncError::Apply(e) => e.is_transient(),
        }
    }
}

fn render_errors(errors: &[ManifestError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a successful sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub revision: String,
    pub fetched: bool,
    pub plans: usize,
    pub applied: bool,
    pub pruned: Vec<String>,
    /// Dry-run only: the DRPlans as the server would store them, for the plan controller to render from.
    pub dry_run_plans: Vec<Value>,
}

/// Validates one DRPlan document with the same function `check` and the admission webhook use.
pub fn validate_plan(object: &Value, admin_namespace: &str) -> Vec<FieldProblem> {
    match crate::plan::validate::parse_and_validate(object, admin_namespace) {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .into_iter()
            .map(|e| FieldProblem {
                field: e.field,
                message: e.message,
            })
            .collect(),
    }
}

/// Parses and validates a set of manifest files (pure): every DRPlan, or every problem.
pub fn plans_from_files(
    files: &[ManifestFile],
    admin_namespace: &str,
) -> Result<Vec<PlanDocument>, Vec<ManifestError>> {
    manifests::parse_plans(files, |object| validate_plan(object, admin_namespace))
}

/// The DRPlan object to apply for a document: our label, the revision and file annotations, no status.
pub fn plan_to_apply(plan: &PlanDocument, revision: &str) -> Value {
    let mut object = plan.object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    let meta = object
        .as_object_mut()
        .map(|o| o.entry("metadata").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut);
    if let Some(meta) = meta {
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(MANAGED_BY.into(), json!(MANAGED_BY_VALUE));
        }
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if let Some(annotations) = annotations.as_object_mut() {
            annotations.insert(REVISION_ANNOTATION.into(), json!(revision));
            annotations.insert(
                SOURCE_ANNOTATION.into(),
                json!(format!("{}:{}", plan.file, plan.line)),
            );
        }
    }
    object
}

/// The git half of the reconciler.
pub struct GitSync {
    pub config: GitSourceConfig,
    applier: Applier,
    inventory_namespace: String,
    admin_namespace: String,
    dry_run: bool,
    /// `--allow-empty`: a commit without any DRPlan prunes every plan applied before.
    allow_empty: bool,
    /// The revision whose plans were last applied, to skip re-applying an unchanged commit on hook triggers.
    last_applied: Option<String>,
    /// `--verify-signatures`: commits from the last applied revision to the tip must be signed by a trusted key.
    verification: Option<Verification>,
    /// `--git-timeout`: the longest one fetch may take.
    timeout: std::time::Duration,
    /// Plans (`namespace/name`) under a break-glass override, with its primary: a revision naming another primary
    /// is not applied to them, and they are never pruned while the override stands.
    held: BTreeMap<String, String>,
}

impl GitSync {
    pub fn new(
        config: GitSourceConfig,
        applier: Applier,
        inventory_namespace: &str,
        admin_namespace: &str,
        dry_run: bool,
        allow_empty: bool,
    ) -> Self {
        GitSync {
            allow_empty,
            config,
            applier,
            inventory_namespace: inventory_namespace.into(),
            admin_namespace: admin_namespace.into(),
            dry_run,
            last_applied: None,
            verification: None,
            timeout: crate::source::limits::GIT_TIMEOUT,
            held: BTreeMap::new(),
        }
    }

    /// The plans under a break-glass override (`namespace/name` → its primary), for the next syncs.
    pub fn hold(&mut self, held: BTreeMap<String, String>) {
        self.held = held;
    }

    /// Cuts a fetch that takes longer than `timeout`.
    pub fn with_fetch_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Refuses revisions whose commits lack the signatures `verification` requires.
    pub fn with_verification(mut self, verification: Option<Verification>) -> Self {
        self.verification = verification;
        self
    }

    /// Fetches, validates and applies the branch head. `force` re-applies an unchanged revision (drift repair on
    /// the periodic pass). Updates `state` whatever happens.
    pub async fn sync(
        &mut self,
        state: &mut SourceState,
        metrics: &Metrics,
        force: bool,
        diff_out: &mut String,
    ) -> Result<SyncReport, SyncError> {
        let started = Instant::now();
        let (config, timeout) = (self.config.clone(), self.timeout);
        let fetched = tokio::task::spawn_blocking(move || git::fetch_within(&config, timeout))
            .await
            .map_err(|e| SyncError::Join(e.to_string()))?;
        metrics
            .git_fetch_duration_seconds
            .observe(started.elapsed().as_secs_f64());
        let (result, changed) = match &fetched {
            Ok(fetched) => {
                metrics
                    .git_received_bytes_total
                    .inc_by(fetched.received_bytes as u64);
                (Outcome::Success, fetched.changed)
            }
            Err(_) => (Outcome::Failure, false),
        };
        metrics
            .git_fetch_total
            .get_or_create(&FetchLabels { result, changed })
            .inc();
        let fetched = fetched?;
        let revision = fetched.revision.clone();
        state.git = true;
        state.attempted_revision = Some(revision.clone());
        if !force
            && self.last_applied.as_deref() == Some(revision.as_str())
            && state.failures.is_empty()
        {
            return Ok(SyncReport {
                revision,
                fetched: fetched.changed,
                ..SyncReport::default()
            });
        }

        // The last applied revision: this process's, else the one the inventory records.
        let mut inventory = match &self.last_applied {
            Some(_) => None,
            None => Some(self.inventory().await?),
        };
        let base = self
            .last_applied
            .clone()
            .or_else(|| inventory.as_ref().and_then(|i| i.revision.clone()));
        // A revision the inventory recorded from another remote (--git-url changed) says nothing of this history.
        let same_remote = self.last_applied.is_some()
            || inventory.as_ref().and_then(|i| i.url.as_deref()) == Some(self.config.url.as_str());
        if let Some(applied) = base.clone().filter(|b| *b != revision && same_remote) {
            let cache = self.config.cache_dir.clone();
            let (tip, ancestor) = (revision.clone(), applied.clone());
            let contained =
                tokio::task::spawn_blocking(move || git::contains(&cache, &ancestor, &tip))
                    .await
                    .map_err(|e| SyncError::Join(e.to_string()))??;
            if contained != Some(true) {
                // Read now (or in this pass), so an acceptance annotated a moment ago counts.
                let inventory = match inventory.take() {
                    Some(inventory) => inventory,
                    None => self.inventory().await?,
                };
                if inventory.accepted_rewrite.as_deref() != Some(revision.as_str()) {
                    return Err(self.refuse_rewrite(state, metrics, revision, &applied));
                }
            }
        }

        if let Some(verification) = self.verification.clone() {
            // From the last applied revision to the tip.
            let cache = self.config.cache_dir.clone();
            let (tip, dir) = (revision.clone(), self.config.path.clone());
            let checked = tokio::task::spawn_blocking(move || {
                verify::verify_range(&cache, base.as_deref(), &tip, &dir, &verification)
            })
            .await
            .map_err(|e| SyncError::Join(e.to_string()))?;
            match checked {
                Ok(()) => {}
                Err(VerifyError::Refused(refusal)) => {
                    return Err(self.refuse_unverified(state, metrics, revision, &refusal));
                }
                Err(VerifyError::Source(err @ SourceError::Refused { .. })) => {
                    let error = ManifestError {
                        file: String::new(),
                        line: 0,
                        field: None,
                        plan: None,
                        message: err.to_string(),
                    };
                    return Err(self.refuse(state, metrics, revision, vec![error]).await);
                }
                Err(VerifyError::Source(err)) => return Err(err.into()),
                Err(err @ VerifyError::Walk(_)) => {
                    let error = ManifestError {
                        file: String::new(),
                        line: 0,
                        field: None,
                        plan: None,
                        message: err.to_string(),
                    };
                    return Err(self.refuse(state, metrics, revision, vec![error]).await);
                }
            }
        }

        let cache = self.config.cache_dir.clone();
        let (rev, dir) = (revision.clone(), self.config.path.clone());
        let files = tokio::task::spawn_blocking(move || git::read_revision(&cache, &rev, &dir))
            .await
            .map_err(|e| SyncError::Join(e.to_string()))?;
        let files = match files {
            Ok(files) => files,
            // Git holds no empty directories: deleting every plan file removes the path itself.
            Err(SourceError::NoPath { path, .. }) if self.allow_empty => {
                tracing::warn!(
                    revision = %revision,
                    "{path:?} does not exist at this revision: with --allow-empty, as a commit without any DRPlan"
                );
                Vec::new()
            }
            Err(err) => {
                // A missing --git-path at this revision is a broken commit like any other; a refused tree names
                // its own path.
                let file = if matches!(err, SourceError::Refused { .. }) {
                    String::new()
                } else {
                    self.config.path.clone()
                };
                let error = ManifestError {
                    file,
                    line: 0,
                    field: None,
                    plan: None,
                    message: err.to_string(),
                };
                return Err(self.refuse(state, metrics, revision, vec![error]).await);
            }
        };
        let plans = match plans_from_files(&files, &self.admin_namespace) {
            Ok(plans) => plans,
            Err(errors) => return Err(self.refuse(state, metrics, revision, errors).await),
        };

        let mut report = SyncReport {
            revision: revision.clone(),
            fetched: fetched.changed,
            plans: plans.len(),
            ..SyncReport::default()
        };
        let mut desired = BTreeSet::new();
        let mut primaries = BTreeMap::new();
        for plan in &plans {
            let object = plan_to_apply(plan, &revision);
            let Some(key) = ObjectKey::of(&object) else {
                continue;
            };
            desired.insert(key.clone());
            let id = format!("{}/{}", key.namespace, key.name);
            let primary = object
                .pointer("/spec/primary")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let held = self.held.get(&id).is_some_and(|target| *target != primary);
            primaries.insert(id.clone(), (revision.clone(), primary.clone()));
            if held {
                // A break-glass override stands and Git names another primary: the live plan keeps the override's.
                tracing::info!(
                    plan = %id, revision = %revision, git_primary = %primary,
                    "not applied: a break-glass override stands on this plan"
                );
                continue;
            }
            if self.dry_run {
                let live = self.applier.get(&key).await?;
                let result = self.applier.apply(&object, true).await?;
                diff_out.push_str(&diff::object_diff(&key, live.as_ref(), Some(&result)));
                report.dry_run_plans.push(result);
            } else {
                self.applier.apply(&object, false).await?;
            }
        }
        report.applied = !self.dry_run;

        let previous = self.read_inventory().await?;
        let mut kept_after_failure = BTreeSet::new();
        if desired.is_empty() && !self.allow_empty {
            if !previous.is_empty() {
                tracing::warn!(
                    revision = %revision,
                    "the commit holds no DRPlan: nothing is pruned (an empty render never prunes); \
                     delete plans one by one, keep at least one, or run with --allow-empty to delete them all"
                );
            }
            kept_after_failure.extend(previous.iter().cloned());
        } else {
            for stale in previous.difference(&desired) {
                if self
                    .held
                    .contains_key(&format!("{}/{}", stale.namespace, stale.name))
                {
                    // Under a break-glass override: kept until Git holds the override's primary again.
                    kept_after_failure.insert(stale.clone());
                    continue;
                }
                if self.dry_run {
                    if let Some(live) = self.applier.get(stale).await? {
                        diff_out.push_str(&diff::object_diff(stale, Some(&live), None));
                    }
                    continue;
                }
                match self.applier.delete_if_ours(stale, false).await {
                    Ok(true) => report.pruned.push(stale.to_string()),
                    Ok(false) => {}
                    Err(err) => {
                        tracing::warn!(object = %stale, "prune failed, kept in the inventory: {err}");
                        kept_after_failure.insert(stale.clone());
                    }
                }
            }
        }
        if !self.dry_run {
            let inventory: BTreeSet<ObjectKey> =
                desired.union(&kept_after_failure).cloned().collect();
            self.write_inventory(&inventory, &revision).await?;
            self.last_applied = Some(revision.clone());
            state.applied_revision = Some(revision.clone());
            state.git_primaries = primaries;
        }
        state.failures.clear();
        Ok(report)
    }

    /// Records a refused commit: `state` names the affected plans; nothing is applied.
    async fn refuse(
        &self,
        state: &mut SourceState,
        metrics: &Metrics,
        revision: String,
        errors: Vec<ManifestError>,
    ) -> SyncError {
        metrics.git_commit_invalid_total.inc();
        let by_file = self.plans_by_source_file().await.unwrap_or_default();
        let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for error in &errors {
            let text = format!("revision {} is invalid: {error}", short(&revision));
            let affected: Vec<String> = match &error.plan {
                Some(plan) => vec![plan.clone()],
                None => by_file
                    .get(&error.file)
                    .cloned()
                    .unwrap_or_else(|| vec!["*".into()]),
            };
            for plan in affected {
                failures.entry(plan).or_default().push(text.clone());
            }
        }
        state.failures = failures
            .into_iter()
            .map(|(plan, texts)| (plan, texts.join("; ")))
            .collect();
        tracing::error!(revision = %revision, "{}", render_errors(&errors));
        SyncError::Invalid { revision, errors }
    }

    /// Records a revision refused for a missing or untrusted signature: every plan keeps the last applied revision,
    /// and each plan's status and Event name the commit, its author and why.
    fn refuse_unverified(
        &self,
        state: &mut SourceState,
        metrics: &Metrics,
        revision: String,
        refusal: &Refusal,
    ) -> SyncError {
        metrics.git_verification_failures_total.inc();
        let mode = self.verification.as_ref().map_or("", |v| v.mode.as_str());
        let message = format!(
            "revision {} refused by --verify-signatures {mode}: {refusal}",
            short(&revision)
        );
        tracing::error!(revision = %revision, commit = %refusal.commit, author = %refusal.author, "{message}");
        refuse_revision(state, revision, message)
    }

    /// Records a tip whose history does not contain the last applied revision: nothing is applied, and every
    /// plan's status names both revisions and how to accept the new history.
    fn refuse_rewrite(
        &self,
        state: &mut SourceState,
        metrics: &Metrics,
        revision: String,
        applied: &str,
    ) -> SyncError {
        metrics.git_commit_invalid_total.inc();
        let message = format!(
            "branch {branch:?} was rewritten: its tip {tip} does not contain the last applied revision {applied} \
             (a force push or a reset); nothing of it is applied. If the new history is meant, accept this tip \
             with `kubectl -n {namespace} annotate configmap {INVENTORY_NAME} --overwrite \
             {ACCEPT_REWRITE_ANNOTATION}={revision}`; else push a tip that contains {applied}",
            branch = self.config.branch,
            tip = short(&revision),
            applied = short(applied),
            namespace = self.inventory_namespace,
        );
        tracing::error!(revision = %revision, applied = %applied, "{message}");
        refuse_revision(state, revision, message)
    }

    /// What the inventory ConfigMap records, in one read.
    async fn inventory(&self) -> Result<Inventory, ApplyError> {
        let Some(c) = self.applier.get(&self.inventory_key()).await? else {
            return Ok(Inventory::default());
        };
        let text = |pointer: &str| {
            c.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Ok(Inventory {
            revision: text("/data/revision").filter(|r| !r.is_empty()),
            url: text("/data/url"),
            accepted_rewrite: c
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(ACCEPT_REWRITE_ANNOTATION))
                .and_then(Value::as_str)
                .map(|v| v.trim().to_ascii_lowercase()),
        })
    }

    /// `file → [namespace/name]` of the DRPlans we applied, from their source annotation.
    async fn plans_by_source_file(&self) -> Result<BTreeMap<String, Vec<String>>, ApplyError> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for plan in self
            .applier
            .list_labelled(DRPLAN_API_VERSION, "DRPlan", None)
            .await?
        {
            let Some(key) = ObjectKey::of(&plan) else {
                continue;
            };
            let Some(source) = plan
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(SOURCE_ANNOTATION))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let file = source.rsplit_once(':').map_or(source, |(file, _)| file);
            out.entry(file.to_string())
                .or_default()
                .push(format!("{}/{}", key.namespace, key.name));
        }
        Ok(out)
    }

    fn inventory_key(&self) -> ObjectKey {
        ObjectKey {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: self.inventory_namespace.clone(),
            name: INVENTORY_NAME.into(),
        }
    }

    async fn read_inventory(&self) -> Result<BTreeSet<ObjectKey>, ApplyError> {
        let Some(configmap) = self.applier.get(&self.inventory_key()).await? else {
            return Ok(BTreeSet::new());
        };
        let text = configmap
            .pointer("/data/plans")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok(text
            .lines()
            .filter_map(|line| line.split_once('/'))
            .map(|(namespace, name)| ObjectKey {
                api_version: DRPLAN_API_VERSION.into(),
                kind: "DRPlan".into(),
                namespace: namespace.into(),
                name: name.into(),
            })
            .collect())
    }

    async fn write_inventory(
        &self,
        plans: &BTreeSet<ObjectKey>,
        revision: &str,
    ) -> Result<(), ApplyError> {
        let list: Vec<String> = plans
            .iter()
            .map(|k| format!("{}/{}", k.namespace, k.name))
            .collect();
        let configmap = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": INVENTORY_NAME,
                "namespace": self.inventory_namespace,
                "labels": { MANAGED_BY: MANAGED_BY_VALUE },
            },
            "data": { "plans": list.join("\n"), "revision": revision, "url": self.config.url },
        });
        self.applier.apply(&configmap, false).await.map(|_| ())
    }
}

/// The first 12 hex digits of a commit id.
pub fn short(revision: &str) -> &str {
    revision.get(..12).unwrap_or(revision)
}

/// What the inventory ConfigMap records: the last applied revision, the remote it came from, and a rewritten tip an
/// operator accepted.
#[derive(Default)]
struct Inventory {
    revision: Option<String>,
    url: Option<String>,
    accepted_rewrite: Option<String>,
}

/// A revision refused as a whole: every plan's status carries `message`, and nothing of it is applied.
fn refuse_revision(state: &mut SourceState, revision: String, message: String) -> SyncError {
    state.failures = BTreeMap::from([("*".to_string(), message.clone())]);
    SyncError::Invalid {
        revision,
        errors: vec![ManifestError {
            file: String::new(),
            line: 0,
            field: None,
            plan: None,
            message,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_plans_carry_label_revision_and_file_but_no_status() {
        let doc = PlanDocument {
            file: "plans/mysql.yaml".into(),
            line: 3,
            object: json!({"apiVersion": DRPLAN_API_VERSION, "kind": "DRPlan",
                "metadata": {"name": "mysql", "namespace": "mysql", "labels": {"team": "db"}},
                "spec": {}, "status": {"role": "Primary"}}),
        };
        let object = plan_to_apply(&doc, "abc123");
        assert_eq!(
            object["metadata"]["labels"],
            json!({"team": "db", MANAGED_BY: "drgitops"})
        );
        assert_eq!(
            object["metadata"]["annotations"][REVISION_ANNOTATION],
            "abc123"
        );
        assert_eq!(
            object["metadata"]["annotations"][SOURCE_ANNOTATION],
            "plans/mysql.yaml:3"
        );
        assert!(object.get("status").is_none());
    }
}
