//! Rendering: the Stork objects a cluster holds for one DRPlan in its role (DESIGN.md's role table). Pure.
//!
//! In: a validated plan, this cluster's role, and the inputs that never live in Git (the peer's kubeconfig and the
//! storage pairing options, both from Secrets) plus whether the peer's API answered. Out: JSON objects ready for a
//! server-side apply: the ClusterPair, the NamespacedSchedulePolicy `<plan>` and the MigrationSchedule `<plan>`,
//! each labelled `app.kubernetes.io/managed-by: drgitops` and `drgitops.dev/plan: <plan>`. No object carries
//! `status`: Stork's CRDs have no status subresource, so sending one would overwrite what Stork wrote.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::types::{DRPlan, Mode, Role};
use crate::stork::keys::{
    MANAGED_BY, MANAGED_BY_VALUE, PLAN_LABEL, STATIC_COPY, STORK_API_VERSION,
};
use crate::stork::types::{KubeCluster, KubeConfig, KubeContext, KubeUser};

/// The storage pairing options of an async ClusterPair, from the plan's storage Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageOptions {
    pub ip: String,
    pub port: String,
    pub token: String,
    pub backuplocation: Option<String>,
}

/// What rendering needs beyond the plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderInputs {
    /// The peer cluster's kubeconfig (the usual YAML, lists of named entries), as stored in the Secret.
    pub peer_kubeconfig: Option<String>,
    /// Async only: the storage pairing options.
    pub storage: Option<StorageOptions>,
    /// Whether the peer's API server answered; a primary suspends its schedule while it does not.
    pub peer_reachable: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    #[error("peer kubeconfig is not valid YAML: {0}")]
    KubeconfigSyntax(String),
    #[error("peer kubeconfig has no current-context; set one to the peer cluster's context")]
    NoCurrentContext,
    #[error("peer kubeconfig: current-context {0:?} is not among its contexts")]
    UnknownContext(String),
    #[error("peer kubeconfig: context {context:?} names {what} {name:?}, which is not defined")]
    DanglingReference {
        context: String,
        what: &'static str,
        name: String,
    },
    #[error(
        "peer kubeconfig: {field} refers to a file, which Stork cannot read; inline it as {inline} (base64 of the file)"
    )]
    FileReference { field: String, inline: String },
    #[error("peer kubeconfig: cluster {0:?} has no server")]
    NoServer(String),
    #[error("storage secret: port {0:?} is not a number")]
    BadPort(String),
}

/// This cluster's role in `plan`: primary when `spec.primary` is the local cluster domain.
pub fn role_of(plan: &DRPlan, local_domain: &str) -> Role {
    if plan.spec.primary == local_domain {
        Role::Primary
    } else {
        Role::Standby
    }
}

fn labels(plan_name: &str) -> Value {
    json!({ MANAGED_BY: MANAGED_BY_VALUE, PLAN_LABEL: plan_name })
}

fn plan_meta(plan: &DRPlan) -> (String, String) {
    (
        plan.metadata.name.clone().unwrap_or_default(),
        plan.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
    )
}

/// Everything this role holds for `plan`: the ClusterPair, the NamespacedSchedulePolicy and the MigrationSchedule.
pub fn render(plan: &DRPlan, role: Role, inputs: &RenderInputs) -> Result<Vec<Value>, RenderError> {
    let mut objects = vec![cluster_pair(plan, inputs)?];
    objects.extend(render_without_credentials(
        plan,
        role,
        inputs.peer_reachable,
    ));
    Ok(objects)
}

/// The objects of [`render`] that carry no credentials (the NamespacedSchedulePolicy and the MigrationSchedule):
/// what `drgitops render` prints, since the ClusterPair needs Secrets that never live in Git.
pub fn render_without_credentials(plan: &DRPlan, role: Role, peer_reachable: bool) -> Vec<Value> {
    vec![
        schedule_policy(plan),
        migration_schedule(plan, role, peer_reachable),
    ]
}

/// The NamespacedSchedulePolicy `<plan>` from `spec.schedule`.
pub fn schedule_policy(plan: &DRPlan) -> Value {
    let (name, namespace) = plan_meta(plan);
    let policy = serde_json::to_value(plan.spec.schedule.to_policy()).unwrap_or_else(|_| json!({}));
    json!({
        "apiVersion": STORK_API_VERSION,
        "kind": "NamespacedSchedulePolicy",
        "metadata": { "name": name, "namespace": namespace, "labels": labels(&name) },
        "policy": policy,
    })
}

/// The MigrationSchedule `<plan>`: template from `spec.migration`, `startApplications: false`, the plan's
/// namespaces; suspended on a standby, and on a primary while the peer is unreachable.
pub fn migration_schedule(plan: &DRPlan, role: Role, peer_reachable: bool) -> Value {
    let (name, namespace) = plan_meta(plan);
    let pair = &plan.spec.cluster_pair.name;
    let template = plan.spec.migration_or_default().to_migration_spec(
        plan.spec.mode,
        pair,
        &plan.namespaces(),
    );
    let template = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    let suspend = match role {
        Role::Standby => true,
        Role::Primary => !peer_reachable,
    };
    let mut metadata = json!({ "name": name, "namespace": namespace, "labels": labels(&name) });
    if role == Role::Standby {
        // The primary's Stork keeps a passive copy of its schedule here under the same name, and stalls with
        // "a non static-copy migrationSchedule with the same name" if it finds one without this annotation. So
        // the standby's schedule *is* that copy: marked static, suspended, never executed by Stork.
        metadata["annotations"] = json!({ STATIC_COPY: "true" });
    }
    json!({
        "apiVersion": STORK_API_VERSION,
        "kind": "MigrationSchedule",
        "metadata": metadata,
        "spec": {
            "template": { "spec": template },
            "schedulePolicyName": name,
            "suspend": suspend,
            "autoSuspend": plan.spec.schedule.auto_suspend(),
        },
    })
}

/// The ClusterPair towards the peer: `config` from the peer kubeconfig (current context only, credentials
/// inlined); async: options ip/port/token[/backuplocation] and `mode: DisasterRecovery`; metro: no options.
pub fn cluster_pair(plan: &DRPlan, inputs: &RenderInputs) -> Result<Value, RenderError> {
    let (plan_name, namespace) = plan_meta(plan);
    let mut spec = serde_json::Map::new();
    if let Some(kubeconfig) = &inputs.peer_kubeconfig {
        let config = cluster_pair_config(kubeconfig)?;
        spec.insert(
            "config".into(),
            serde_json::to_value(config).unwrap_or_else(|_| json!({})),
        );
    }
    if plan.spec.mode == Mode::Async
        && let Some(storage) = &inputs.storage
    {
        if storage.port.parse::<u16>().is_err() {
            return Err(RenderError::BadPort(storage.port.clone()));
        }
        let mut options = BTreeMap::new();
        options.insert("ip", storage.ip.clone());
        options.insert("port", storage.port.clone());
        options.insert("token", storage.token.clone());
        options.insert("mode", "DisasterRecovery".to_string());
        if let Some(location) = &storage.backuplocation {
            options.insert("backuplocation", location.clone());
        }
        spec.insert("options".into(), json!(options));
    }
    Ok(json!({
        "apiVersion": STORK_API_VERSION,
        "kind": "ClusterPair",
        "metadata": { "name": plan.spec.cluster_pair.name, "namespace": namespace, "labels": labels(&plan_name) },
        "spec": spec,
    }))
}

/// Converts a kubeconfig (lists of named entries) into the ClusterPair's `config` (client-go's internal shape:
/// maps keyed by name), keeping only the current context, its cluster and its user, as `storkctl generate
/// clusterpair` does. File references are refused: the Secret is all Stork will ever see.
pub fn cluster_pair_config(kubeconfig: &str) -> Result<KubeConfig, RenderError> {
    let doc: Value = serde_yaml::from_str(kubeconfig)
        .map_err(|e| RenderError::KubeconfigSyntax(e.to_string()))?;
    let current = doc
        .get("current-context")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or(RenderError::NoCurrentContext)?
        .to_string();
    let named = |list: &str, name: &str, inner: &str| -> Option<Value> {
        doc.get(list)?
            .as_array()?
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
            .map(|e| e.get(inner).cloned().unwrap_or_else(|| json!({})))
    };
    let context = named("contexts", &current, "context")
        .ok_or_else(|| RenderError::UnknownContext(current.clone()))?;
    let cluster_name = context
        .get("cluster")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let user_name = context
        .get("user")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let cluster = named("clusters", &cluster_name, "cluster").ok_or_else(|| {
        RenderError::DanglingReference {
            context: current.clone(),
            what: "cluster",
            name: cluster_name.clone(),
        }
    })?;
    let user = if user_name.is_empty() {
        json!({})
    } else {
        named("users", &user_name, "user").ok_or_else(|| RenderError::DanglingReference {
            context: current.clone(),
            what: "user",
            name: user_name.clone(),
        })?
    };

    for (field, inline) in [("certificate-authority", "certificate-authority-data")] {
        if cluster.get(field).is_some() {
            return Err(RenderError::FileReference {
                field: format!("clusters[{cluster_name}].{field}"),
                inline: inline.into(),
            });
        }
    }
    for (field, inline) in [
        ("client-certificate", "client-certificate-data"),
        ("client-key", "client-key-data"),
        ("tokenFile", "token"),
    ] {
        if user.get(field).is_some() {
            return Err(RenderError::FileReference {
                field: format!("users[{user_name}].{field}"),
                inline: inline.into(),
            });
        }
    }

    let cluster: KubeCluster = serde_json::from_value(cluster)
        .map_err(|e| RenderError::KubeconfigSyntax(format!("cluster: {e}")))?;
    if cluster.server.as_deref().is_none_or(str::is_empty) {
        return Err(RenderError::NoServer(cluster_name));
    }
    let user: KubeUser = serde_json::from_value(user)
        .map_err(|e| RenderError::KubeconfigSyntax(format!("user: {e}")))?;
    let context: KubeContext = serde_json::from_value(context)
        .map_err(|e| RenderError::KubeconfigSyntax(format!("context: {e}")))?;

    let mut config = KubeConfig {
        clusters: Some(BTreeMap::from([(cluster_name, cluster)])),
        contexts: Some(BTreeMap::from([(current.clone(), context)])),
        current_context: Some(current),
        ..KubeConfig::default()
    };
    if !user_name.is_empty() {
        config.users = Some(BTreeMap::from([(user_name, user)]));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(yaml: &str) -> DRPlan {
        serde_yaml::from_str(yaml).expect("plan parses")
    }

    const ASYNC: &str = "
apiVersion: drgitops.dev/v1alpha1
kind: DRPlan
metadata: {name: mysql, namespace: mysql}
spec:
  mode: async
  primary: east
  domains: [{name: east}, {name: west}]
  clusterPair:
    name: remotecluster
    peerKubeconfigSecret: {name: drgitops-peer, key: kubeconfig}
    storageSecret: {name: drgitops-peer-storage}
  schedule:
    interval: {intervalMinutes: 15}
  migration:
    includeVolumes: true
    excludeResourceTypes: [Job]
";

    const KUBECONFIG: &str = "
apiVersion: v1
kind: Config
current-context: west
contexts:
- name: west
  context: {cluster: west-cluster, user: west-admin, namespace: kube-system}
- name: other
  context: {cluster: other, user: other}
clusters:
- name: west-cluster
  cluster: {server: 'https://west.example:6443', certificate-authority-data: Q0E=}
- name: other
  cluster: {server: 'https://other.example'}
users:
- name: west-admin
  user: {token: secret-token}
- name: other
  user: {token: other-token}
";

    fn inputs(reachable: bool) -> RenderInputs {
        RenderInputs {
            peer_kubeconfig: Some(KUBECONFIG.into()),
            storage: Some(StorageOptions {
                ip: "10.0.0.9".into(),
                port: "9001".into(),
                token: "px-token".into(),
                backuplocation: None,
            }),
            peer_reachable: reachable,
        }
    }

    #[test]
    fn primary_renders_the_role_table() {
        let plan = plan(ASYNC);
        assert_eq!(role_of(&plan, "east"), Role::Primary);
        let objects = render(&plan, Role::Primary, &inputs(true)).expect("renders");
        let kinds: Vec<_> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            kinds,
            [
                "ClusterPair",
                "NamespacedSchedulePolicy",
                "MigrationSchedule"
            ]
        );
        for object in &objects {
            assert_eq!(object["metadata"]["labels"][MANAGED_BY], "drgitops");
            assert_eq!(object["metadata"]["labels"][PLAN_LABEL], "mysql");
            assert_eq!(object["metadata"]["namespace"], "mysql");
            assert!(object.get("status").is_none());
        }
        let pair = &objects[0];
        assert_eq!(pair["metadata"]["name"], "remotecluster");
        assert_eq!(
            pair["spec"]["options"],
            json!({"ip": "10.0.0.9", "port": "9001", "token": "px-token", "mode": "DisasterRecovery"})
        );
        let config = &pair["spec"]["config"];
        assert_eq!(config["current-context"], "west");
        assert_eq!(
            config["clusters"]["west-cluster"]["server"],
            "https://west.example:6443"
        );
        assert_eq!(config["users"]["west-admin"]["token"], "secret-token");
        assert!(
            config["clusters"].get("other").is_none(),
            "only the current context is kept"
        );

        assert_eq!(objects[1]["metadata"]["name"], "mysql");
        assert_eq!(
            objects[1]["policy"],
            json!({"interval": {"intervalMinutes": 15}})
        );

        let schedule = &objects[2];
        assert_eq!(schedule["spec"]["suspend"], false);
        assert!(
            schedule["metadata"].get("annotations").is_none(),
            "a primary's schedule runs"
        );
        assert_eq!(schedule["spec"]["schedulePolicyName"], "mysql");
        assert_eq!(schedule["spec"]["autoSuspend"], true);
        let template = &schedule["spec"]["template"]["spec"];
        assert_eq!(template["startApplications"], false);
        assert_eq!(template["clusterPair"], "remotecluster");
        assert_eq!(template["namespaces"], json!(["mysql"]));
        assert_eq!(template["includeVolumes"], true);
        assert_eq!(template["excludeResourceTypes"], json!(["Job"]));
    }

    #[test]
    fn schedule_suspends_on_standby_and_while_the_peer_is_unreachable() {
        let plan = plan(ASYNC);
        assert_eq!(role_of(&plan, "west"), Role::Standby);
        let standby = render(&plan, Role::Standby, &inputs(true)).expect("renders");
        assert_eq!(standby[2]["spec"]["suspend"], true);
        assert_eq!(
            standby[2]["metadata"]["annotations"][STATIC_COPY], "true",
            "the peer's Stork sees its copy"
        );
        assert_eq!(
            standby[0]["kind"], "ClusterPair",
            "a standby keeps its pair for failback"
        );
        let cut_off = render(&plan, Role::Primary, &inputs(false)).expect("renders");
        assert_eq!(cut_off[2]["spec"]["suspend"], true);
    }

    #[test]
    fn metro_pairs_carry_no_storage_options_and_never_volumes() {
        let plan = plan(&ASYNC.replace("mode: async", "mode: metro"));
        let objects = render(&plan, Role::Primary, &inputs(true)).expect("renders");
        assert!(objects[0]["spec"].get("options").is_none());
        assert_eq!(
            objects[2]["spec"]["template"]["spec"]["includeVolumes"],
            false
        );
    }

    /// What the webhook says about each object the reconciler renders for `plan` in both roles (`rule field:
    /// message` per finding or patch), judged as a CREATE by an ordinary user with the default policy, against a
    /// view that already holds the plan and the rest of the render (the reconciler applies the pair and the policy
    /// before the schedule).
    fn webhook_findings(plan: &DRPlan, inputs: &RenderInputs) -> Vec<String> {
        use kube::api::DynamicObject;

        use crate::cluster::live::LiveView;
        use crate::policy::{Operation, PolicyConfig, Request, UserInfo, evaluate};

        let plan_object = serde_json::to_value(plan).expect("plan serialises");
        let user = UserInfo {
            username: "alice".into(),
            groups: vec!["system:authenticated".into()],
        };
        let config = PolicyConfig::default();
        let mut findings = Vec::new();
        for (role, local) in [(Role::Primary, "east"), (Role::Standby, "west")] {
            let objects = render(plan, role, inputs).expect("renders");
            let view = LiveView::new(Some(local.into()));
            for object in objects.iter().chain([&plan_object]) {
                let dynamic: DynamicObject =
                    serde_json::from_value(object.clone()).expect("a Kubernetes object");
                view.apply(&dynamic);
            }
            view.mark_synced();
            for object in objects.iter().chain([&plan_object]) {
                let api_version = object["apiVersion"].as_str().unwrap_or_default();
                let req = Request {
                    operation: Operation::Create,
                    group: api_version.rsplit_once('/').map_or("", |(g, _)| g),
                    kind: object["kind"].as_str().unwrap_or_default(),
                    sub_resource: None,
                    namespace: object["metadata"]["namespace"].as_str(),
                    name: object["metadata"]["name"].as_str(),
                    object: Some(object),
                    old_object: None,
                    user: &user,
                    dry_run: false,
                    field_manager: None,
                };
                let decision = evaluate(&req, &view, &config);
                findings.extend(
                    decision
                        .findings
                        .iter()
                        .map(|f| format!("{} {}", f.rule, f.message)),
                );
                findings.extend(
                    decision
                        .mutations
                        .iter()
                        .map(|m| format!("{} {}", m.rule, m.message)),
                );
            }
        }
        findings
    }

    fn checked(yaml: &str) -> DRPlan {
        let value: Value = serde_yaml::from_str(yaml).expect("plan parses");
        crate::plan::validate::parse_and_validate(&value, "kube-system").expect("plan is valid")
    }

    #[test]
    fn valid_plans_render_what_the_webhook_admits() {
        let metro = ASYNC
            .replace("mode: async", "mode: metro")
            .replace("includeVolumes: true", "includeVolumes: false");
        let metro_inputs = RenderInputs {
            storage: None,
            ..inputs(true)
        };
        let cases = [
            ("async with storage options", checked(ASYNC), inputs(true)),
            ("metro", checked(&metro), metro_inputs),
        ];
        for (name, plan, inputs) in cases {
            assert_eq!(
                webhook_findings(&plan, &inputs),
                Vec::<String>::new(),
                "{name}"
            );
        }
    }

    #[test]
    fn async_resources_only_renders_a_pair_without_storage_and_no_volumes() {
        let plan = checked(
            &ASYNC
                .replace("    storageSecret: {name: drgitops-peer-storage}\n", "")
                .replace("includeVolumes: true", "includeVolumes: false"),
        );
        assert_eq!(plan.spec.cluster_pair.storage_secret, None);
        let inputs = RenderInputs {
            storage: None,
            ..inputs(true)
        };
        let objects = render(&plan, Role::Primary, &inputs).expect("renders");
        assert!(objects[0]["spec"].get("options").is_none());
        assert_eq!(
            objects[2]["spec"]["template"]["spec"]["includeVolumes"],
            false
        );
        assert_eq!(webhook_findings(&plan, &inputs), Vec::<String>::new());
    }

    /// The plan validation refuses is exactly the one whose render the webhook would deny.
    #[test]
    fn async_without_storage_secret_is_refused_before_the_webhook_would_deny_its_schedule() {
        let yaml = ASYNC
            .replace("    storageSecret: {name: drgitops-peer-storage}\n", "")
            .replace("    includeVolumes: true\n", "");
        let value: Value = serde_yaml::from_str(&yaml).expect("plan parses");
        let errors = crate::plan::validate::parse_and_validate(&value, "kube-system")
            .expect_err("validation refuses it");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.clusterPair.storageSecret"]);

        let unchecked = plan(&yaml);
        let inputs = RenderInputs {
            storage: None,
            ..inputs(true)
        };
        let findings = webhook_findings(&unchecked, &inputs);
        let count = |prefix: &str| findings.iter().filter(|f| f.starts_with(prefix)).count();
        // One of each per role: the schedule of either role names the pair without storage options.
        assert_eq!(
            (
                count("metro-volumes spec.template.spec.includeVolumes: absent"),
                count("drplan-valid spec.clusterPair.storageSecret: absent"),
                findings.len()
            ),
            (2, 2, 4),
            "{findings:#?}"
        );
    }

    #[test]
    fn kubeconfig_problems_are_named() {
        let with_file = KUBECONFIG.replace("{token: secret-token}", "{client-key: /etc/key.pem}");
        assert_eq!(
            cluster_pair_config(&with_file),
            Err(RenderError::FileReference {
                field: "users[west-admin].client-key".into(),
                inline: "client-key-data".into()
            })
        );
        let no_current = KUBECONFIG.replace("current-context: west", "");
        assert_eq!(
            cluster_pair_config(&no_current),
            Err(RenderError::NoCurrentContext)
        );
        let unknown = KUBECONFIG.replace("current-context: west", "current-context: nope");
        assert_eq!(
            cluster_pair_config(&unknown),
            Err(RenderError::UnknownContext("nope".into()))
        );
        let mut bad_port = inputs(true);
        if let Some(s) = bad_port.storage.as_mut() {
            s.port = "px".into();
        }
        assert_eq!(
            render(&plan(ASYNC), Role::Primary, &bad_port),
            Err(RenderError::BadPort("px".into()))
        );
    }
}
