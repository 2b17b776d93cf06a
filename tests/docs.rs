//! The repository stands on its own: every link between the repository's
//! documents reaches a file of the repository (and a heading of it, when it
//! names one), nothing sends a reader to a document the repository does
//! not hold, and no source file grows past one subject's length.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The Markdown a reader of the repository meets.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut found: Vec<PathBuf> = ["README.md", "BENCHMARKS.md", "FUZZING.md"]
        .iter()
        .map(|name| root.join(name))
        .collect();
    for folder in ["docs", "server/templates", "fixtures"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// `[text](target)` links, code spans and fenced blocks left out.
fn links(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Code spans hold examples, not links.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].trim().to_owned());
            rest = &after[end..];
        }
    }
    out
}

/// The anchors a heading gets, as the usual Markdown renderers write them:
/// lower case, punctuation but `-` and `_` dropped, spaces as `-`.
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let heading = line.trim_start_matches('#').trim();
        let slug: String = heading
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        out.insert(slug);
    }
    // Explicit anchors (`<a id="…">`) count too.
    for piece in markdown.split("id=\"").skip(1) {
        if let Some(end) = piece.find('"') {
            out.insert(piece[..end].to_owned());
        }
    }
    out
}

#[test]
fn every_link_between_documents_reaches_a_file_and_heading_of_the_repository() {
    let mut broken = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document).unwrap();
        let here = document.parent().unwrap();
        for link in links(&text) {
            if link.starts_with("http://")
                || link.starts_with("https://")
                || link.starts_with("mailto:")
            {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                document.clone()
            } else {
                here.join(file)
            };
            let shown = format!(
                "{}: ({link})",
                document.strip_prefix(ROOT).unwrap().display()
            );
            let Ok(target) = target.canonicalize() else {
                broken.push(format!("{shown}: no such file"));
                continue;
            };
            if !target.starts_with(ROOT) {
                broken.push(format!("{shown}: outside the repository"));
                continue;
            }
            if !anchor.is_empty() && target.extension().is_some_and(|e| e == "md") {
                let headings = anchors(&std::fs::read_to_string(&target).unwrap());
                if !headings.contains(anchor) {
                    broken.push(format!("{shown}: no heading #{anchor}"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn no_document_or_source_sends_the_reader_to_a_document_outside_the_repository() {
    // The project's working notes live outside the repository; what a
    // reader needs is said in README.md and docs/.
    let forbidden = [
        "../shared",
        "CONTRACT",
        "contract §",
        "PROTOCOLS.md",
        "STYLE.md",
    ];
    let mut found = Vec::new();
    let mut files = documents();
    for folder in [
        "src",
        "server/src",
        "server/tests",
        "server/console",
        "simulator",
        "testkit",
        "markup",
        "scripts",
        "tests",
        "fixtures",
        "docs",
        "fuzz",
    ] {
        collect(&Path::new(ROOT).join(folder), &mut files);
    }
    for file in files {
        if file.ends_with("tests/docs.rs") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (number, line) in text.lines().enumerate() {
            if forbidden.iter().any(|word| line.contains(word)) {
                found.push(format!(
                    "{}:{}: {}",
                    file.strip_prefix(ROOT).unwrap().display(),
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "names a document outside the repository:\n{}",
        found.join("\n")
    );
}

fn collect(folder: &Path, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.ends_with("target") && !path.ends_with("node_modules") {
                collect(&path, into);
            }
        } else {
            into.push(path);
        }
    }
}

#[test]
fn no_source_file_is_over_1200_lines() {
    // Past that a file holds more than one subject: split it by concern.
    let mut files = Vec::new();
    for folder in ["src", "server", "simulator", "testkit", "markup", "tests"] {
        collect(&Path::new(ROOT).join(folder), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .filter(|file| file.extension().is_some_and(|e| e == "rs"))
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).ok()?.lines().count();
            (lines > 1200).then(|| {
                format!(
                    "{}: {lines} lines",
                    file.strip_prefix(ROOT).unwrap().display()
                )
            })
        })
        .collect();
    assert!(long.is_empty(), "{}", long.join("\n"));
}
