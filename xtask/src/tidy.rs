//! `cargo xtask tidy`: repository rules no compiler or linter checks, each
//! failure naming the file, the line and the fix.
//!
//! 1. No library crate depends on `anyhow` (only `crates/cli` and `xtask` may).
//! 2. Every workspace member has a row in the crate table of `docs/architecture.md`.
//! 3. No doc, comment or script points at a file outside the repository.
//! 4. Every Rust module starts with a `//!` line (generated files excepted).
//! 5. Every member inherits `rust-version` and `[lints]` from the workspace;
//!    enforced once the root manifest has `[workspace.lints]`, printed as
//!    warnings until then.
//!
//! The checkers are pure functions over file texts, so the unit tests below
//! run them on small in-memory inputs. This file itself is not searched by
//! check 3: it has to spell out what it looks for.

use crate::util;
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::process::Command;

/// Crates allowed to depend on `anyhow`, by path from the workspace root.
const ANYHOW_ALLOWED: &[&str] = &["crates/cli", "xtask"];

/// The table that describes every workspace member.
const ARCHITECTURE: &str = "docs/architecture.md";

/// Text that only ever points outside the repository.
const OUTSIDE_NEEDLES: &[&str] = &[
    "../shared",
    "shared/reference",
    "/work/",
    "pytorch-format.md",
    "peers-and-users.md",
];

/// Names of documents that exist in the outside reference folder and also
/// under `docs/formats/`: a mention is fine only when it resolves to a file
/// in the repository (relative to the root or to the mentioning file).
const AMBIGUOUS_DOCS: &[&str] = &["onnx.md", "caffe2.md"];

/// Files check 3 skips (they name the needles on purpose).
const OUTSIDE_EXEMPT: &[&str] = &["xtask/src/tidy.rs"];

/// One rule broken at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    /// 1-based; 0 when the problem concerns the whole file.
    pub line: usize,
    pub message: String,
}

impl Problem {
    fn new(path: &str, line: usize, message: impl Into<String>) -> Self {
        Problem {
            path: path.to_string(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path, self.message)
        } else {
            write!(f, "{}:{}: {}", self.path, self.line, self.message)
        }
    }
}

/// A workspace member: its package name and its folder relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub dir: String,
}

impl Member {
    fn manifest(&self) -> String {
        format!("{}/Cargo.toml", self.dir)
    }
}

pub fn run(root: &Path) -> Result<()> {
    let members = workspace_members(root)?;
    let files = repo_files(root)?;
    let read = |rel: &str| -> Result<String> {
        std::fs::read_to_string(root.join(rel)).with_context(|| format!("reading {rel}"))
    };

    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let root_manifest = read("Cargo.toml")?;
    let enforce_inheritance = Manifest::parse(&root_manifest)
        .entries
        .iter()
        .any(|e| e.table == "workspace.lints" || e.table.starts_with("workspace.lints."));
    for member in &members {
        let path = member.manifest();
        let text = read(&path)?;
        let manifest = Manifest::parse(&text);
        if !ANYHOW_ALLOWED.contains(&member.dir.as_str()) {
            problems.extend(check_no_anyhow(&path, &manifest));
        }
        let inheritance = check_inheritance(&path, &manifest);
        if enforce_inheritance {
            problems.extend(inheritance);
        } else {
            warnings.extend(inheritance);
        }
    }
    problems.extend(check_architecture_table(
        ARCHITECTURE,
        &read(ARCHITECTURE)?,
        &members,
    ));

    let existing: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    for rel in &files {
        let Ok(bytes) = std::fs::read(root.join(rel)) else {
            continue; // listed by git but deleted in the work tree
        };
        let Ok(text) = String::from_utf8(bytes) else {
            continue; // binary fixture
        };
        if text.contains('\0') {
            continue;
        }
        if !OUTSIDE_EXEMPT.contains(&rel.as_str()) {
            problems.extend(check_outside_references(rel, &text, &|p| {
                existing.contains(p)
            }));
        }
        if is_checked_module(rel) {
            problems.extend(check_module_doc(rel, &text));
        }
    }

    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if !warnings.is_empty() {
        eprintln!(
            "warning: the {} inheritance finding(s) above become errors once the root \
             Cargo.toml defines [workspace.lints]",
            warnings.len()
        );
    }
    for problem in &problems {
        eprintln!("{problem}");
    }
    if !problems.is_empty() {
        bail!("tidy: {} problem(s), listed above", problems.len());
    }
    eprintln!(
        "tidy: {} members and {} files checked, no problems",
        members.len(),
        files.len()
    );
    Ok(())
}

/// The workspace members from `cargo metadata --no-deps`, with their folders
/// relative to `root`.
fn workspace_members(root: &Path) -> Result<Vec<Member>> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let json = util::output(
        Command::new(cargo).current_dir(root).args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
        ]),
        "cargo metadata",
    )?;
    members_from_metadata(&json, root)
}

fn members_from_metadata(json: &str, root: &Path) -> Result<Vec<Member>> {
    let value: serde_json::Value =
        serde_json::from_str(json).context("parsing `cargo metadata` output")?;
    let root_manifest = value["workspace_root"]
        .as_str()
        .map(Path::new)
        .unwrap_or(root)
        .to_path_buf();
    let ids: BTreeSet<&str> = value["workspace_members"]
        .as_array()
        .context("`cargo metadata` output has no workspace_members")?
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let mut members = Vec::new();
    for package in value["packages"].as_array().into_iter().flatten() {
        if !package["id"].as_str().is_some_and(|id| ids.contains(id)) {
            continue;
        }
        let name = package["name"].as_str().context("package without a name")?;
        let manifest = Path::new(
            package["manifest_path"]
                .as_str()
                .context("package without a manifest_path")?,
        );
        let dir = manifest
            .parent()
            .and_then(|d| d.strip_prefix(&root_manifest).ok())
            .with_context(|| format!("{} is outside the workspace root", manifest.display()))?;
        let dir = dir.to_string_lossy().replace('\\', "/");
        if dir.is_empty() {
            continue; // a root package is described by the README, not the table
        }
        members.push(Member {
            name: name.to_string(),
            dir,
        });
    }
    members.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(members)
}

/// Tracked and not-ignored untracked files, relative to `root`.
fn repo_files(root: &Path) -> Result<Vec<String>> {
    let out = util::output(
        Command::new("git").current_dir(root).args([
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "-z",
        ]),
        "git ls-files",
    )?;
    let mut files: Vec<String> = out
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// One `key = value` line of a Cargo manifest, with the table it is in.
#[derive(Debug)]
struct Entry<'a> {
    line: usize,
    /// `package`, `dependencies`, `target.'cfg(unix)'.dependencies`, ...
    table: String,
    /// As written: `anyhow`, `anyhow.workspace`, `rust-version.workspace`.
    key: &'a str,
    value: &'a str,
}

/// Just enough TOML for Cargo manifests as this workspace writes them: table
/// headers and `key = value` lines (continuation lines of multi-line arrays
/// are skipped). Line numbers are kept for the messages.
#[derive(Debug)]
struct Manifest<'a> {
    entries: Vec<Entry<'a>>,
    /// Tables by name with their header's line.
    tables: Vec<(String, usize)>,
    /// Number of lines (where a missing table would be appended).
    lines: usize,
}

impl<'a> Manifest<'a> {
    fn parse(text: &'a str) -> Self {
        let mut entries = Vec::new();
        let mut tables = Vec::new();
        let mut table = String::new();
        for (i, raw) in text.lines().enumerate() {
            let line = strip_comment(raw).trim();
            if let Some(header) = line.strip_prefix('[') {
                let header = header.trim_start_matches('[');
                let header = header.split(']').next().unwrap_or_default();
                table = header
                    .split('.')
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(".");
                tables.push((table.clone(), i + 1));
            } else if let Some((key, value)) = line.split_once('=') {
                entries.push(Entry {
                    line: i + 1,
                    table: table.clone(),
                    key: key.trim(),
                    value: value.trim(),
                });
            }
        }
        Manifest {
            entries,
            tables,
            lines: text.lines().count(),
        }
    }
}

/// The line without a `#` comment (a `#` inside a string is kept).
fn strip_comment(line: &str) -> &str {
    let mut in_string: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (in_string, c) {
            (None, '#') => return &line[..i],
            (None, '"' | '\'') => in_string = Some(c),
            (Some(q), c) if c == q => in_string = None,
            _ => {}
        }
    }
    line
}

fn is_dependency_table(table: &str) -> bool {
    let last = table.rsplit('.').next().unwrap_or(table);
    matches!(
        last,
        "dependencies" | "dev-dependencies" | "build-dependencies"
    )
}

/// Check 1: `anyhow` in any dependency table, by key, by `[dependencies.anyhow]`
/// or renamed with `package = "anyhow"`.
fn check_no_anyhow(path: &str, manifest: &Manifest) -> Vec<Problem> {
    let fix =
        "library crates return typed thiserror errors; only crates/cli and xtask may use anyhow";
    let mut problems = Vec::new();
    for (table, line) in &manifest.tables {
        let named_table = table.rsplit_once('.').is_some_and(|(deps, name)| {
            is_dependency_table(deps) && name.trim_matches('"') == "anyhow"
        });
        if named_table {
            problems.push(Problem::new(
                path,
                *line,
                format!("[{table}] makes this library depend on anyhow: remove it ({fix})"),
            ));
        }
    }
    for entry in &manifest.entries {
        let in_dep_table = is_dependency_table(&entry.table);
        let name = entry
            .key
            .split('.')
            .next()
            .unwrap_or_default()
            .trim_matches('"');
        let renamed = entry.value.contains("package")
            && (entry.value.contains("\"anyhow\"") || entry.value.contains("'anyhow'"));
        let renamed_table = entry.key == "package"
            && entry.value.trim_matches(['"', '\'']) == "anyhow"
            && entry
                .table
                .rsplit_once('.')
                .is_some_and(|(deps, _)| is_dependency_table(deps));
        if (in_dep_table && (name == "anyhow" || renamed)) || renamed_table {
            problems.push(Problem::new(
                path,
                entry.line,
                format!(
                    "`{} = {}` in [{}] makes this library depend on anyhow: remove it ({fix})",
                    entry.key, entry.value, entry.table
                ),
            ));
        }
    }
    problems.sort_by_key(|p| p.line);
    problems
}

/// Check 5: `rust-version.workspace = true` in `[package]` and
/// `workspace = true` in `[lints]`.
fn check_inheritance(path: &str, manifest: &Manifest) -> Vec<Problem> {
    let mut problems = Vec::new();
    let inherits = |table: &str, dotted: &str, key: &str| {
        manifest.entries.iter().any(|e| {
            e.table == table
                && ((e.key == dotted && e.value == "true")
                    || (e.key == key && e.value.replace(' ', "").contains("workspace=true")))
        })
    };
    let package_line = manifest
        .tables
        .iter()
        .find(|(t, _)| t == "package")
        .map_or(0, |(_, l)| *l);
    if !inherits("package", "rust-version.workspace", "rust-version") {
        problems.push(Problem::new(
            path,
            package_line,
            "[package] does not inherit the workspace's rust-version: add \
             `rust-version.workspace = true`",
        ));
    }
    let lints = manifest
        .entries
        .iter()
        .any(|e| e.table == "lints" && e.key == "workspace" && e.value == "true");
    if !lints {
        let line = manifest
            .tables
            .iter()
            .find(|(t, _)| t == "lints")
            .map_or(manifest.lines, |(_, l)| *l);
        problems.push(Problem::new(
            path,
            line,
            "the crate does not inherit the workspace lints: add `[lints]` with \
             `workspace = true` (a crate that must allow a lint says why in a comment there)",
        ));
    }
    problems
}

/// Check 2: a row of the table in `docs/architecture.md` names the member's
/// package (in backticks) and its folder.
fn check_architecture_table(path: &str, text: &str, members: &[Member]) -> Vec<Problem> {
    let rows: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with('|'))
        .map(|(i, l)| (i + 1, l))
        .collect();
    let table_end = rows.last().map_or(0, |(i, _)| *i);
    members
        .iter()
        .filter(|m| {
            let name = format!("`{}`", m.name);
            !rows
                .iter()
                .any(|(_, row)| row.contains(&name) && row.contains(&m.dir))
        })
        .map(|m| {
            Problem::new(
                path,
                table_end,
                format!(
                    "workspace member `{}` ({}) is not in the crate table: add a row \
                     \"| `{}` (`{}`) | what it owns | what it depends on |\"",
                    m.name, m.dir, m.name, m.dir
                ),
            )
        })
        .collect()
}

/// Check 3: mentions of the outside reference folder or of files in it.
/// `exists` says whether a path relative to the root is a repository file.
fn check_outside_references(path: &str, text: &str, exists: &dyn Fn(&str) -> bool) -> Vec<Problem> {
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    let fix = "copy the facts the code relies on into docs/formats/ and cite that page's section";
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for needle in OUTSIDE_NEEDLES {
            if line.contains(needle) {
                problems.push(Problem::new(
                    path,
                    i + 1,
                    format!("`{needle}` points outside the repository: {fix}"),
                ));
            }
        }
        for token in path_tokens(line) {
            if OUTSIDE_NEEDLES.iter().any(|n| token.contains(n)) {
                continue; // reported above
            }
            let Some(doc) = AMBIGUOUS_DOCS
                .iter()
                .find(|d| token == **d || token.ends_with(&format!("/{d}")))
            else {
                continue;
            };
            let relative = if dir.is_empty() {
                token.to_string()
            } else {
                normalize(&format!("{dir}/{token}"))
            };
            if !exists(token) && !exists(&relative) {
                problems.push(Problem::new(
                    path,
                    i + 1,
                    format!(
                        "`{token}` is no file of the repository (it names the outside \
                         reference's `{doc}`): cite `docs/formats/{doc}` instead; {fix}"
                    ),
                ));
            }
        }
    }
    problems
}

/// Runs of path characters in `line` (`docs/formats/onnx.md`, `onnx.md`).
fn path_tokens(line: &str) -> impl Iterator<Item = &str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-')))
        .map(|t| t.trim_end_matches('.'))
        .filter(|t| !t.is_empty())
}

/// `a/b/../c` -> `a/c`, `a/./b` -> `a/b`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Rust sources check 4 covers: the libraries, xtask and the examples.
fn is_checked_module(rel: &str) -> bool {
    if !rel.ends_with(".rs") {
        return false;
    }
    let parts: Vec<&str> = rel.split('/').collect();
    matches!(
        parts.as_slice(),
        ["crates" | "examples", _, "src", ..] | ["xtask", "src", ..] | ["examples", _, "build.rs"]
    )
}

/// Check 4: the first non-blank line is a `//!` line, unless the file says
/// it is generated.
fn check_module_doc(path: &str, text: &str) -> Vec<Problem> {
    let first = text.lines().enumerate().find(|(_, l)| !l.trim().is_empty());
    match first {
        Some((_, line)) if line.trim_start().starts_with("//!") || line.contains("@generated") => {
            Vec::new()
        }
        Some((i, _)) => vec![Problem::new(
            path,
            i + 1,
            "the module does not start with a `//!` line: add one saying what the module is for",
        )],
        None => vec![Problem::new(
            path,
            0,
            "the module is empty: delete it, or start it with a `//!` line saying what it is for",
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(problems: &[Problem]) -> Vec<usize> {
        problems.iter().map(|p| p.line).collect()
    }

    #[test]
    fn anyhow_is_found_in_every_spelling() {
        let text = r#"[package]
name = "netport-foo"

[dependencies]
thiserror.workspace = true
anyhow.workspace = true
anyhow-like = "1"   # a different crate
err = { package = "anyhow", version = "1" }

[target.'cfg(unix)'.dev-dependencies]
anyhow = "1"

[build-dependencies.anyhow]
version = "1"

[dependencies.oops]
package = "anyhow"
"#;
        let problems = check_no_anyhow("crates/foo/Cargo.toml", &Manifest::parse(text));
        assert_eq!(lines(&problems), vec![6, 8, 11, 13, 17], "{problems:#?}");
        assert!(
            problems[0]
                .to_string()
                .starts_with("crates/foo/Cargo.toml:6: ")
        );
        assert!(problems[0].message.contains("remove it"));
    }

    #[test]
    fn anyhow_outside_dependency_tables_or_in_comments_is_fine() {
        let text = "[package]\nname = \"x\" # anyhow = 1\n[features]\nanyhow = []\n\
                    [dependencies]\n# anyhow.workspace = true\nserde = \"1\"\n";
        assert!(check_no_anyhow("Cargo.toml", &Manifest::parse(text)).is_empty());
    }

    #[test]
    fn inheritance_needs_both_keys() {
        let good =
            "[package]\nname = \"a\"\nrust-version.workspace = true\n\n[lints]\nworkspace = true\n";
        assert!(check_inheritance("a/Cargo.toml", &Manifest::parse(good)).is_empty());
        let inline = "[package]\nrust-version = { workspace = true }\n[lints]\nworkspace = true\n";
        assert!(check_inheritance("a/Cargo.toml", &Manifest::parse(inline)).is_empty());

        let bad = "\n[package]\nname = \"a\"\nrust-version = \"1.80\"\n";
        let problems = check_inheritance("a/Cargo.toml", &Manifest::parse(bad));
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert_eq!(problems[0].line, 2);
        assert!(
            problems[0]
                .message
                .contains("rust-version.workspace = true")
        );
        assert!(problems[1].message.contains("[lints]"));
        assert_eq!(
            problems[1].line, 4,
            "a missing [lints] is reported at the end"
        );
        // A key in another table does not count.
        let elsewhere = "[package]\n[lints]\n[lints.rust]\nworkspace = true\n";
        assert_eq!(
            check_inheritance("a/Cargo.toml", &Manifest::parse(elsewhere)).len(),
            2
        );
    }

    #[test]
    fn every_member_needs_a_table_row_with_name_and_path() {
        let doc = "# Architecture\n\n| crate | owns |\n|---|---|\n\
                   | `netport-tensor` (`crates/tensor`) | dtypes |\n\
                   | `xtask` | tasks |\n\
                   | `netport-onnx` | no path here |\n\nnetport-io in crates/io, prose only\n";
        let members = [
            ("netport-tensor", "crates/tensor"),
            ("xtask", "xtask"),
            ("netport-onnx", "crates/onnx"),
            ("netport-io", "crates/io"),
        ]
        .map(|(name, dir)| Member {
            name: name.into(),
            dir: dir.into(),
        });
        let problems = check_architecture_table("docs/architecture.md", doc, &members);
        let names: Vec<&str> = problems
            .iter()
            .map(|p| p.message.split('`').nth(1).unwrap())
            .collect();
        assert_eq!(names, ["netport-onnx", "netport-io"]);
        assert!(problems.iter().all(|p| p.line == 7));
    }

    #[test]
    fn outside_references_are_found_and_repo_docs_are_not() {
        let repo = [
            "docs/formats/onnx.md",
            "docs/formats/caffe2.md",
            "docs/cli.md",
        ];
        let exists = |p: &str| repo.contains(&p);
        let text = "\
// see docs/formats/onnx.md, 'External data'
// (`pytorch-format.md` section 2.1)
# shared/reference/caffe2.md 2.3
see ../shared/x and /work/notes
# (onnx.md 5.2)
peers-and-users.md 4c
";
        let problems = check_outside_references("testdata/make.py", text, &exists);
        assert_eq!(lines(&problems), vec![2, 3, 4, 4, 5, 6], "{problems:#?}");
        assert!(problems[0].message.contains("docs/formats/"));
        // A sibling link inside docs/formats resolves in the repository.
        let sibling = "See [the ONNX page](onnx.md) and [caffe2](./caffe2.md).";
        assert!(check_outside_references("docs/formats/pickle.md", sibling, &exists).is_empty());
        // ... but not from a folder without that file.
        assert_eq!(
            check_outside_references("docs/cli.md", sibling, &exists).len(),
            2
        );
        // Names that only end alike are other files.
        assert!(check_outside_references("a.rs", "my_onnx.md; xonnx.md", &exists).is_empty());
    }

    #[test]
    fn modules_start_with_a_doc_line() {
        assert!(check_module_doc("a.rs", "\n//! What this is for.\nuse x;\n").is_empty());
        assert!(check_module_doc("g.rs", "// @generated by codegen\npub struct A;\n").is_empty());
        let missing = check_module_doc("b.rs", "\n\n/// an item doc\npub fn f() {}\n");
        assert_eq!(lines(&missing), vec![3]);
        assert!(missing[0].message.contains("`//!`"));
        let attr_first = check_module_doc("c.rs", "#![forbid(unsafe_code)]\n//! Doc.\n");
        assert_eq!(lines(&attr_first), vec![1]);
        assert_eq!(check_module_doc("d.rs", "  \n").len(), 1);
    }

    #[test]
    fn checked_modules_are_library_xtask_and_example_sources() {
        assert!(is_checked_module("crates/torch/src/zip.rs"));
        assert!(is_checked_module("crates/torch/src/write/mod.rs"));
        assert!(is_checked_module("xtask/src/bench/mod.rs"));
        assert!(is_checked_module("examples/build-script/build.rs"));
        assert!(!is_checked_module("crates/torch/tests/read.rs"));
        assert!(!is_checked_module("fuzz/fuzz_targets/pickle_scan.rs"));
        assert!(!is_checked_module("crates/torch/src/notes.md"));
    }

    #[test]
    fn members_come_from_cargo_metadata_relative_to_the_root() {
        let json = r#"{
            "workspace_root": "/repo",
            "workspace_members": ["path+file:///repo/crates/io#netport-io@0.1.0", "path+file:///repo/xtask#0.1.0"],
            "packages": [
                {"id": "path+file:///repo/xtask#0.1.0", "name": "xtask", "manifest_path": "/repo/xtask/Cargo.toml"},
                {"id": "path+file:///repo/crates/io#netport-io@0.1.0", "name": "netport-io", "manifest_path": "/repo/crates/io/Cargo.toml"},
                {"id": "registry+x#serde@1", "name": "serde", "manifest_path": "/home/x/serde/Cargo.toml"}
            ]
        }"#;
        let members = members_from_metadata(json, Path::new("/elsewhere")).unwrap();
        assert_eq!(
            members,
            [
                Member {
                    name: "netport-io".into(),
                    dir: "crates/io".into()
                },
                Member {
                    name: "xtask".into(),
                    dir: "xtask".into()
                },
            ]
        );
    }

    #[test]
    fn comments_are_stripped_outside_strings_only() {
        assert_eq!(strip_comment("a = \"#x\" # c"), "a = \"#x\" ");
        assert_eq!(strip_comment("# all"), "");
        assert_eq!(strip_comment("[t] # c"), "[t] ");
    }
}
