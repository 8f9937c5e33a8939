//! Caps on what one revision of the plans path may hold, and the checks a hostile repository must pass before a file
//! is read. Pure: names, sizes and link targets in, a refusal that says what to do out.
//!
//! The git source and `render --repo` read every manifest below the plans path into memory, once per revision they
//! look at; these caps keep a repository (or a push to it) from exhausting the reconciler's memory or reading
//! outside the plans path. A refused revision applies nothing, like an invalid one.

use std::time::Duration;

/// The largest manifest file read: a DRPlan is a few KiB; 1 MiB leaves room for long comments and many plans in
/// one file while keeping a single blob from filling memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// The most bytes of manifests read from one revision: 16 files at the per-file cap, thousands of plans.
pub const MAX_REVISION_BYTES: u64 = 16 * 1024 * 1024;
/// The most entries (files of any kind, links and directories) below the plans path.
pub const MAX_FILES: usize = 5_000;
/// The deepest a file or directory may sit below the plans path, in directories.
pub const MAX_DEPTH: usize = 16;
/// The longest a fetch (or `render`'s clone) may take, from connecting to the last byte, as Flux's default.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(60);

/// What a revision has used of the caps so far.
#[derive(Debug, Default)]
pub struct Budget {
    files: usize,
    bytes: u64,
}

impl Budget {
    /// Counts one entry at `path`, `depth` directories below the plans path.
    pub fn entry(&mut self, path: &str, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "{path} is nested {depth} directories below the plans path, more than {MAX_DEPTH}; flatten the \
                 directory tree of the plans"
            ));
        }
        self.files += 1;
        if self.files > MAX_FILES {
            return Err(format!(
                "the plans path holds more than {MAX_FILES} files and directories; point --git-path (or --path) \
                 at the directory of the DRPlans only"
            ));
        }
        Ok(())
    }

    /// Counts the `size` bytes of the manifest at `path`, before it is read.
    pub fn file(&mut self, path: &str, size: u64) -> Result<(), String> {
        if size > MAX_FILE_BYTES {
            return Err(format!(
                "{path} is {size} bytes, over the {} MiB cap for one manifest file; split it into several files",
                MAX_FILE_BYTES >> 20
            ));
        }
        self.bytes += size;
        if self.bytes > MAX_REVISION_BYTES {
            return Err(format!(
                "the manifests below the plans path are over {} MiB in total; keep only DRPlans there, or split \
                 them across plans paths",
                MAX_REVISION_BYTES >> 20
            ));
        }
        Ok(())
    }
}

/// Why a symlink at `link` (a `/`-separated path from the repository root) to `target` is refused: it points
/// outside `dir` (the plans path, `""` for the whole repository), or anywhere by an absolute path.
pub fn link_outside(link: &str, target: &str, dir: &str) -> Option<String> {
    let refuse = || {
        Some(format!(
            "{link} is a symbolic link to {target:?}, outside the plans path; commit the file itself instead of a \
             link"
        ))
    };
    if target.starts_with('/') || target.contains('\\') {
        return refuse();
    }
    let mut resolved: Vec<&str> = link.split('/').collect();
    resolved.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if resolved.pop().is_none() {
                    return refuse();
                }
            }
            other => resolved.push(other),
        }
    }
    let inside = dir.is_empty() || {
        let prefix: Vec<&str> = dir.split('/').collect();
        resolved.len() >= prefix.len() && resolved[..prefix.len()] == prefix[..]
    };
    if inside { None } else { refuse() }
}

/// The refusal of a file name that is not UTF-8 (shown lossily).
pub fn not_utf8_name(parent: &str, lossy: &str) -> String {
    let at = if parent.is_empty() { "." } else { parent };
    format!("a file name in {at} is not UTF-8 ({lossy:?}); rename it in UTF-8")
}

/// The refusal of a submodule (a gitlink, or a nested repository in a checkout) at `path`.
pub fn submodule(path: &str) -> String {
    format!(
        "{path} is a submodule; drgitops does not read submodules: commit the plans into this repository, or move \
         the submodule out of the plans path"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_may_only_point_inside_the_plans_path() {
        let cases = [
            ("plans/a.yaml", "b.yaml", "plans", true),
            ("plans/sub/a.yaml", "../b.yaml", "plans", true),
            ("plans/a.yaml", "../secrets.yaml", "plans", false),
            ("plans/a.yaml", "../plans2/b.yaml", "plans", false),
            ("plans/a.yaml", "/etc/passwd", "plans", false),
            ("plans/a.yaml", "../../../../etc/passwd", "", false),
            ("a.yaml", "sub/../b.yaml", "", true),
            ("plans/a.yaml", ".", "plans", true),
            ("plans/a.yaml", "..", "plans", false),
        ];
        for (link, target, dir, inside) in cases {
            assert_eq!(
                link_outside(link, target, dir).is_none(),
                inside,
                "{link} -> {target} in {dir:?}"
            );
        }
    }

    #[test]
    fn the_budget_refuses_past_each_cap() {
        let mut budget = Budget::default();
        assert!(budget.entry("plans/a.yaml", MAX_DEPTH).is_ok());
        let deep = budget.entry("plans/x.yaml", MAX_DEPTH + 1).unwrap_err();
        assert!(deep.contains("flatten"), "{deep}");
        let big = budget.file("plans/a.yaml", MAX_FILE_BYTES + 1).unwrap_err();
        assert!(big.contains("split it into several files"), "{big}");
        for _ in 0..16 {
            budget
                .file("plans/a.yaml", MAX_FILE_BYTES)
                .expect("under the total");
        }
        let total = budget.file("plans/b.yaml", 1).unwrap_err();
        assert!(total.contains("16 MiB in total"), "{total}");
        let mut many = Budget::default();
        for _ in 0..MAX_FILES {
            many.entry("plans/a.yaml", 0).expect("under the count");
        }
        assert!(many.entry("plans/b.yaml", 0).is_err());
    }
}
