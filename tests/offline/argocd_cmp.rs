//! The config-management plugin of `examples/argocd/plugin.yaml`, run as Argo CD's cmp-server runs it: the
//! command lines exactly as written there (`generate`, `discover.find`), in the Application's directory of a
//! checkout of a real git repository, with the environment Argo CD gives them (the build variables, the
//! Application's plugin env prefixed `ARGOCD_ENV_`, its parameters as `PARAM_*`) and `drgitops` on PATH as in the
//! sidecar image. What `generate` prints must be exactly what `drgitops render` prints for the same commit.
//!
//! Argo CD itself does not run here: the repo-server's tarball of the checkout is stood in for by a `git clone` at
//! the commit (with and without `.git`, which Argo CD's tar exclusions may drop).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use testkit::reconcile::{commit, gitops_data, plan_repo};
use testkit::{EAST, WEST, git, repo_file};

fn yaml_documents(path: &str) -> Vec<Value> {
    let path = repo_file(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("yaml document"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn plugin() -> Value {
    let mut docs = yaml_documents("examples/argocd/plugin.yaml");
    assert_eq!(
        docs.len(),
        1,
        "plugin.yaml holds one ConfigManagementPlugin"
    );
    docs.remove(0)
}

/// `command` + `args` of a plugin command, as argocd-cmp-server joins them.
fn command_line(spec: &Value) -> Vec<String> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s.as_str().expect("a string").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut line = strings(&spec["command"]);
    line.extend(strings(&spec["args"]));
    assert!(!line.is_empty(), "a command in {spec}");
    line
}

/// The Application of `examples/argocd/application.yaml` that delivers the plans to `domain`'s cluster.
fn application(domain: &str) -> Value {
    yaml_documents("examples/argocd/application.yaml")
        .into_iter()
        .find(|a| a["spec"]["destination"]["name"] == domain)
        .unwrap_or_else(|| panic!("an Application for {domain}"))
}

/// A checkout of `repo` at `revision` as the plugin receives it, optionally without `.git`.
fn checkout(repo: &Path, revision: &str, work: &Path, keep_git: bool) -> PathBuf {
    let dir = work.join(if keep_git { "with-git" } else { "without-git" });
    git(
        work,
        &[
            "clone",
            "-q",
            &repo.display().to_string(),
            &dir.display().to_string(),
        ],
    );
    git(&dir, &["checkout", "-q", "--detach", revision]);
    if !keep_git {
        std::fs::remove_dir_all(dir.join(".git")).expect("remove .git");
    }
    dir
}

/// What Argo CD puts in the environment of a plugin command for `app` at `revision`: the build environment and the
/// Application's plugin env with the `ARGOCD_ENV_` prefix; plus PATH with the drgitops binary, as in the image.
fn argocd_env(app: &Value, revision: &str) -> BTreeMap<String, String> {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_drgitops"));
    let bin_dir = binary.parent().expect("binary directory");
    let mut env = BTreeMap::from([
        (
            "PATH".to_string(),
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin_dir.display()),
        ),
        ("HOME".into(), "/home/argocd".into()),
        (
            "ARGOCD_APP_NAME".into(),
            app["metadata"]["name"].as_str().unwrap_or_default().into(),
        ),
        ("ARGOCD_APP_NAMESPACE".into(), String::new()),
        (
            "ARGOCD_APP_PROJECT_NAME".into(),
            app["spec"]["project"].as_str().unwrap_or_default().into(),
        ),
        ("ARGOCD_APP_REVISION".into(), revision.into()),
        ("ARGOCD_APP_REVISION_SHORT".into(), revision[..7].into()),
        ("ARGOCD_APP_REVISION_SHORT_8".into(), revision[..8].into()),
        (
            "ARGOCD_APP_SOURCE_PATH".into(),
            app["spec"]["source"]["path"]
                .as_str()
                .unwrap_or_default()
                .into(),
        ),
        (
            "ARGOCD_APP_SOURCE_REPO_URL".into(),
            app["spec"]["source"]["repoURL"]
                .as_str()
                .unwrap_or_default()
                .into(),
        ),
        (
            "ARGOCD_APP_SOURCE_TARGET_REVISION".into(),
            app["spec"]["source"]["targetRevision"]
                .as_str()
                .unwrap_or_default()
                .into(),
        ),
        ("KUBE_VERSION".into(), "1.33.0".into()),
        (
            "KUBE_API_VERSIONS".into(),
            "v1,apps/v1,drgitops.dev/v1alpha1,stork.libopenstorage.org/v1alpha1".into(),
        ),
    ]);
    for entry in app["spec"]["source"]["plugin"]["env"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let name = entry["name"].as_str().expect("env name");
        let value = entry["value"].as_str().expect("env value");
        env.insert(format!("ARGOCD_ENV_{name}"), value.into());
    }
    env
}

/// Runs a plugin command line in `dir` with exactly `env`, as argocd-cmp-server does (no shell of its own).
fn run(line: &[String], dir: &Path, env: &BTreeMap<String, String>) -> Output {
    Command::new(&line[0])
        .args(&line[1..])
        .current_dir(dir)
        .env_clear()
        .envs(env)
        .output()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

fn render(repo: &Path, revision: &str, path: &str, domain: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drgitops"))
        .args(["render", "--repo"])
        .arg(repo)
        .args([
            "--rev",
            revision,
            "--path",
            path,
            "--cluster-domain",
            domain,
        ])
        .output()
        .expect("drgitops runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The plans repository of the other tests plus the application's own manifests under `apps/mysql`.
fn repository() -> (tempfile::TempDir, String) {
    let repo = plan_repo();
    let statefulset =
        std::fs::read_to_string(repo_file("tests/data/argocd/apps/mysql/statefulset.yaml"))
            .expect("fixture");
    let revision = commit(
        repo.path(),
        &[("apps/mysql/statefulset.yaml", &statefulset)],
        "add the application",
    );
    (repo, revision)
}

#[test]
fn argocd_cmp_generate_prints_exactly_what_render_prints() {
    let (repo, revision) = repository();
    let work = tempfile::tempdir().expect("tempdir");
    let generate = command_line(&plugin()["spec"]["generate"]);
    for keep_git in [true, false] {
        let checkout = checkout(repo.path(), &revision, work.path(), keep_git);
        let mut outputs = Vec::new();
        for domain in [EAST, WEST] {
            let app = application(domain);
            let path = app["spec"]["source"]["path"].as_str().expect("path");
            let env = argocd_env(&app, &revision);
            assert_eq!(
                env.get("ARGOCD_ENV_CLUSTER_DOMAIN").map(String::as_str),
                Some(domain),
                "the Application sets the plugin env CLUSTER_DOMAIN"
            );
            let plugin = run(&generate, &checkout.join(path), &env);
            assert!(
                plugin.status.success(),
                "generate failed for {domain}: {}",
                text(&plugin.stderr)
            );
            let direct = render(repo.path(), &revision, path, domain);
            assert!(direct.status.success(), "{}", text(&direct.stderr));
            assert_eq!(
                text(&plugin.stdout),
                text(&direct.stdout),
                "the plugin's output for {domain} (checkout {}) is drgitops render's",
                if keep_git {
                    "with .git"
                } else {
                    "without .git"
                }
            );
            let kinds: Vec<String> = serde_yaml::Deserializer::from_str(&text(&plugin.stdout))
                .map(|doc| {
                    let v: Value = serde::Deserialize::deserialize(doc).expect("yaml");
                    v["kind"].as_str().unwrap_or_default().to_string()
                })
                .collect();
            assert_eq!(
                kinds.iter().filter(|k| *k == "DRPlan").count(),
                2,
                "both plans: {kinds:?}"
            );
            assert!(
                !kinds.iter().any(|k| k == "ClusterPair"),
                "never a ClusterPair"
            );
            outputs.push(plugin.stdout);
        }
        assert_ne!(
            outputs[0], outputs[1],
            "the primary's and the standby's renders differ (the MigrationSchedule's suspend)"
        );
    }
}

#[test]
fn argocd_cmp_takes_the_domain_from_a_parameter_and_fails_closed_without_one() {
    let (repo, revision) = repository();
    let work = tempfile::tempdir().expect("tempdir");
    let checkout = checkout(repo.path(), &revision, work.path(), false);
    let plans = checkout.join("plans");
    let generate = command_line(&plugin()["spec"]["generate"]);
    let app = application(WEST);
    let mut env = argocd_env(&app, &revision);
    env.remove("ARGOCD_ENV_CLUSTER_DOMAIN");

    // The parameter cluster-domain, as Argo CD passes `spec.source.plugin.parameters`.
    let mut with_parameter = env.clone();
    with_parameter.insert(
        "ARGOCD_APP_PARAMETERS".into(),
        format!(r#"[{{"name":"cluster-domain","string":"{WEST}"}}]"#),
    );
    with_parameter.insert("PARAM_CLUSTER_DOMAIN".into(), WEST.into());
    let out = run(&generate, &plans, &with_parameter);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        text(&render(repo.path(), &revision, "plans", WEST).stdout)
    );

    // Neither: a failed generation with the reason, and nothing Argo CD could take for an empty render.
    let out = run(&generate, &plans, &env);
    assert!(!out.status.success(), "no cluster domain must fail");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("set the plugin env CLUSTER_DOMAIN"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn argocd_cmp_fails_closed_on_a_broken_commit() {
    let (repo, _) = repository();
    let broken =
        gitops_data("plans/mysql.yaml").replace("intervalMinutes: 15", "intervalMinutes: 0");
    let revision = commit(
        repo.path(),
        &[("plans/mysql.yaml", &broken)],
        "break the schedule",
    );
    let work = tempfile::tempdir().expect("tempdir");
    let checkout = checkout(repo.path(), &revision, work.path(), false);
    let app = application(EAST);
    let out = run(
        &command_line(&plugin()["spec"]["generate"]),
        &checkout.join("plans"),
        &argocd_env(&app, &revision),
    );
    assert!(!out.status.success(), "a broken plan must fail the sync");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout, so nothing is applied or pruned: {}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("mysql.yaml") && stderr.contains("intervalMinutes"),
        "the reason names the file and the field: {stderr}"
    );
}

#[test]
fn argocd_cmp_discovers_plan_directories_only() {
    let (repo, revision) = repository();
    let work = tempfile::tempdir().expect("tempdir");
    let checkout = checkout(repo.path(), &revision, work.path(), false);
    let discover = command_line(&plugin()["spec"]["discover"]["find"]);
    let env = argocd_env(&application(EAST), &revision);
    // argocd-cmp-server: the plugin supports the directory when the command exits 0 with something on stdout.
    let supports = |dir: &str| {
        let out = run(&discover, &checkout.join(dir), &env);
        assert!(
            out.status.success(),
            "discovery must not fail on {dir}: {}",
            text(&out.stderr)
        );
        !text(&out.stdout).trim().is_empty()
    };
    assert!(supports("plans"), "a directory of DRPlans");
    assert!(supports("."), "a repository holding them");
    assert!(!supports("apps/mysql"), "the application's own manifests");
}

#[test]
fn argocd_examples_name_the_plugin_and_the_env_it_reads() {
    let plugin = plugin();
    assert_eq!(plugin["kind"], "ConfigManagementPlugin");
    assert!(
        plugin["spec"]["version"].is_null(),
        "without a version Applications name the plugin by its name alone"
    );
    let name = plugin["metadata"]["name"].as_str().expect("plugin name");
    let script = command_line(&plugin["spec"]["generate"]).join(" ");
    let mut sources = Vec::new();
    for app in yaml_documents("examples/argocd/application.yaml") {
        sources.push(app["spec"]["source"].clone());
    }
    let sets = yaml_documents("examples/argocd/applicationset.yaml");
    let plans_set = sets
        .iter()
        .find(|s| !s["spec"]["template"]["spec"]["source"]["plugin"].is_null())
        .expect("an ApplicationSet for the plans");
    sources.push(plans_set["spec"]["template"]["spec"]["source"].clone());
    for source in &sources {
        assert_eq!(source["plugin"]["name"], name, "{source}");
        for entry in source["plugin"]["env"].as_array().expect("plugin env") {
            let var = format!("ARGOCD_ENV_{}", entry["name"].as_str().expect("name"));
            assert!(script.contains(&var), "generate reads {var}");
        }
    }
    // The ApplicationSet takes the domain from the cluster Secret's label it selects clusters by.
    let label = "drgitops.dev/cluster-domain";
    assert_eq!(
        plans_set["spec"]["generators"][0]["clusters"]["selector"]["matchExpressions"][0]["key"],
        label
    );
    assert_eq!(
        plans_set["spec"]["template"]["spec"]["source"]["plugin"]["env"][0]["value"],
        format!(r#"{{{{index .metadata.labels "{label}"}}}}"#)
    );
    // Every Application of the plans keeps the reconciler's fields of the MigrationSchedule.
    let plan_specs = yaml_documents("examples/argocd/application.yaml")
        .into_iter()
        .map(|a| a["spec"].clone())
        .chain([plans_set["spec"]["template"]["spec"].clone()]);
    for spec in plan_specs {
        let options = spec["syncPolicy"]["syncOptions"].to_string();
        for option in [
            "ServerSideApply=true",
            "RespectIgnoreDifferences=true",
            "Delete=false",
        ] {
            assert!(options.contains(option), "{option} in {options}");
        }
        assert_eq!(spec["syncPolicy"]["automated"]["prune"], false);
        assert_eq!(
            spec["ignoreDifferences"][0]["jsonPointers"],
            serde_json::json!([
                "/spec/suspend",
                "/metadata/annotations/stork.libopenstorage.org~1static-copy"
            ])
        );
    }
}
