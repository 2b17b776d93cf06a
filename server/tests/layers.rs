//! The layering of `server/src`, checked: each module names only the layers
//! below it (docs/architecture.md draws them). From the top: the binary's
//! composition root (`startup`, with `telemetry`) and the HTTP edge
//! (`http/`); the services the edge calls (`subscribers/`: its registry,
//! admin operations, import and listing cursors);
//! the provider adapters (`providers/`), which read requests into the flow's
//! neutral call model and render its scripts; the call flow (`flow/`), then
//! the notifications, the stores and their cache; the domain (`domain/`)
//! at the bottom. A module "names" another when its code (comments aside)
//! holds a `crate::` path into it.

use std::path::{Path, PathBuf};

/// One rule: the modules of `layer` may not name a path starting with any
/// of `forbidden`, and, when `only` is given, nothing outside it.
struct Rule {
    /// What the rule says, for the failure message.
    says: &'static str,
    /// Whether a module (its path under `src/`, `flow/ring.rs`) is in the
    /// layer.
    layer: fn(&str) -> bool,
    forbidden: &'static [&'static str],
    only: Option<&'static [&'static str]>,
}

const RULES: &[Rule] = &[
    Rule {
        says: "nothing below the HTTP edge names it (or the composition root above it)",
        layer: |module| {
            !["http/", "startup.rs", "lib.rs", "fuzzing.rs"]
                .iter()
                .any(|top| module.starts_with(top))
        },
        forbidden: &["crate::http", "crate::startup"],
        only: None,
    },
    Rule {
        says: "the flow names no provider: the adapters depend on its call model",
        layer: |module| module.starts_with("flow/"),
        forbidden: &[
            "crate::providers",
            "crate::subscribers::registry",
            "crate::subscribers::admin",
            "crate::subscribers::import",
        ],
        only: None,
    },
    Rule {
        says: "a provider adapter names only the domain, the flow's call model, rotation and outbound",
        layer: |module| module.starts_with("providers/"),
        forbidden: &[],
        only: Some(&[
            "crate::providers",
            "crate::domain",
            "crate::flow::model",
            "crate::rotation",
            "crate::outbound",
        ]),
    },
    Rule {
        says: "the domain names nothing outside itself",
        layer: |module| module.starts_with("domain/"),
        forbidden: &[],
        only: Some(&["crate::domain"]),
    },
];

#[test]
fn every_module_names_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for file in rust_files(&src) {
        let module = file
            .strip_prefix(&src)
            .expect("under src/")
            .to_string_lossy()
            .replace('\\', "/");
        let code = std::fs::read_to_string(&file).expect("readable source");
        for path in crate_paths(&code) {
            for rule in RULES.iter().filter(|rule| (rule.layer)(&module)) {
                let forbidden = rule.forbidden.iter().any(|f| names(&path, f));
                let outside = rule
                    .only
                    .is_some_and(|only| !only.iter().any(|allowed| names(&path, allowed)));
                if forbidden || outside {
                    broken.push(format!("{module} names {path}: {}", rule.says));
                }
            }
        }
    }
    assert!(broken.is_empty(), "layers broken:\n{}", broken.join("\n"));
}

#[test]
fn the_check_reads_grouped_nested_and_qualified_paths_and_skips_comments() {
    let code = "use crate::{domain::ids::CallSid, http::{self, error::ApiError}};\n\
                use crate::flow::model::CallScript; // crate::store in a comment\n\
                /// [`crate::startup`]\n\
                fn f() { crate::notify::signing::sign(); }\n";
    assert_eq!(
        crate_paths(code),
        [
            "crate::domain::ids::CallSid",
            "crate::http",
            "crate::http::error::ApiError",
            "crate::flow::model::CallScript",
            "crate::notify::signing::sign",
        ]
    );
    assert!(names("crate::http::error", "crate::http"));
    assert!(names("crate::http", "crate::http"));
    assert!(!names("crate::https", "crate::http"));
}

/// Whether `path` is `module` or inside it.
fn names(path: &str, module: &str) -> bool {
    path.strip_prefix(module)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a readable folder") {
        let path = entry.expect("a readable entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// Every `crate::` path in `code`, comments aside, with `use` groups
/// expanded (`crate::{a::b, c}` is `crate::a::b` and `crate::c`).
fn crate_paths(code: &str) -> Vec<String> {
    let code = without_comments(code);
    let mut paths = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        rest = &rest[at + "crate::".len()..];
        if !preceded_by_ident {
            rest = expand("crate", rest, &mut paths);
        }
    }
    paths
}

/// Reads the path (or use tree) after `prefix::` at the start of `rest`
/// into `paths`; what follows it.
fn expand<'a>(prefix: &str, rest: &'a str, paths: &mut Vec<String>) -> &'a str {
    let rest = rest.trim_start();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            inner = inner.trim_start();
            if let Some(after) = inner.strip_prefix('}') {
                return after;
            }
            if let Some(after) = inner.strip_prefix("self") {
                paths.push(prefix.to_owned());
                inner = after;
            } else {
                inner = expand(prefix, inner, paths);
            }
            inner = inner.trim_start();
            inner = inner.strip_prefix(',').unwrap_or(inner);
            if inner.is_empty() {
                return inner;
            }
        }
    }
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    if end == 0 {
        return rest;
    }
    let path = format!("{prefix}::{}", &rest[..end]);
    match rest[end..].strip_prefix("::") {
        Some(after) => expand(&path, after, paths),
        None => {
            paths.push(path);
            &rest[end..]
        }
    }
}

/// `code` without its `//` and `/* */` comments (doc comments included).
fn without_comments(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |end| &after[end..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |end| &after[end + 2..]);
        } else if let Some(quote) = ["'\\\"'", "'\"'"].iter().find(|q| rest.starts_with(**q)) {
            // The character `"`, which starts no string.
            out.push_str("' '");
            rest = &rest[quote.len()..];
        } else if let Some((open, close)) = [("r##\"", "\"##"), ("r#\"", "\"#")]
            .into_iter()
            .find(|(open, _)| rest.starts_with(open))
        {
            let after = &rest[open.len()..];
            out.push_str("\"\"");
            rest = after
                .find(close)
                .map_or("", |end| &after[end + close.len()..]);
        } else if let Some(after) = rest.strip_prefix('"') {
            // A string literal: skipped whole, so that `"https://…"` is
            // not read as a comment.
            let mut chars = after.char_indices();
            let mut end = after.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => {}
                }
            }
            out.push_str("\"\"");
            rest = &after[end..];
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}
