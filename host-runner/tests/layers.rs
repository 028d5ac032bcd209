//! The runner's modules stand in layers, and a module names only modules of layers below
//! its own: no circle, nothing upward. The layers are the diagram in `ARCHITECTURE.md` (the
//! block fenced as `layers`, top layer first), so the document and the code cannot drift
//! apart: a module missing from the diagram, a name in it that is no module, or a module
//! that names one of its own layer or above fails this test.
//!
//! A module "names" another wherever its code (comments and strings aside) has a path to
//! it: a `use`, a `pub use` re-export, an inline `crate::x::…` path anywhere, or a chain of
//! `super::` that climbs out of the module. Files below a folder (`engine/imports.rs`)
//! belong to their top module (`engine`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = "main";

/// The layers of `ARCHITECTURE.md`, bottom first: each a list of top modules.
fn layers() -> Vec<Vec<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ARCHITECTURE.md");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let block = text
        .split("```layers\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("ARCHITECTURE.md has a ```layers block");
    let mut layers: Vec<Vec<String>> = block
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split_whitespace().map(str::to_owned).collect())
        .collect();
    layers.reverse();
    layers
}

/// A top module's rank: its layer's index, bottom = 0.
fn ranks(layers: &[Vec<String>]) -> BTreeMap<String, usize> {
    let mut ranks = BTreeMap::new();
    for (rank, layer) in layers.iter().enumerate() {
        for module in layer {
            let before = ranks.insert(module.clone(), rank);
            assert!(before.is_none(), "{module} stands twice in the diagram");
        }
    }
    ranks
}

/// Every `.rs` file under `dir`, with its module path (`["engine", "imports"]`; the crate
/// root `main.rs` is `[]`).
fn sources(dir: &Path) -> Vec<(Vec<String>, PathBuf)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path
                    .strip_prefix(dir)
                    .expect("under src")
                    .with_extension("");
                let mut module: Vec<String> = relative
                    .iter()
                    .map(|part| part.to_string_lossy().into_owned())
                    .collect();
                if module == [ROOT] {
                    module.clear();
                }
                found.push((module, path));
            }
        }
    }
    found.sort();
    found
}

/// The code of a Rust file with comments, string and character literals blanked out, so
/// that neither a doc link nor a URL in a string counts as a path.
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A character literal ('x', '\n', '{'), or a lifetime ('a), left as it is.
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// The top modules that a file of module `module` names, each with the path that names it.
fn named(module: &[String], source: &str) -> Vec<(String, String)> {
    let code = code_only(source);
    let tokens = tokenize(&code);
    let mut found = Vec::new();
    // Inline `mod name { … }` blocks deepen the module path within the file.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i].as_str();
        match token {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, at)| *at == depth) {
                    inline.pop();
                }
            }
            "mod" if tokens.get(i + 2).is_some_and(|t| t == "{") => {
                inline.push((tokens[i + 1].clone(), depth));
            }
            "crate" | "super" if tokens.get(i + 1).is_some_and(|t| t == "::") => {
                // Not a path segment itself (e.g. the `super` of `a::super`): skip.
                if i > 0 && tokens[i - 1] == "::" {
                    i += 1;
                    continue;
                }
                let mut here: Vec<String> = module
                    .iter()
                    .cloned()
                    .chain(inline.iter().map(|(name, _)| name.clone()))
                    .collect();
                let mut j = i;
                let mut path = String::new();
                if tokens[j] == "crate" {
                    here.clear();
                    path.push_str("crate::");
                    j += 2;
                } else {
                    while tokens.get(j).is_some_and(|t| t == "super")
                        && tokens.get(j + 1).is_some_and(|t| t == "::")
                    {
                        here.pop();
                        path.push_str("super::");
                        j += 2;
                    }
                }
                if here.is_empty() {
                    // At the crate root: the next segment (or each one of a `{…}` group)
                    // is a top module.
                    for first in first_segments(&tokens, j) {
                        found.push((first.clone(), format!("{path}{first}")));
                    }
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The first segment after a path prefix: `x` of `x::…`, or each `a`, `b` of `{a, b::c}`.
fn first_segments(tokens: &[String], at: usize) -> Vec<String> {
    match tokens.get(at).map(String::as_str) {
        Some("{") => {
            let mut segments = Vec::new();
            let mut depth = 0;
            let mut expect = true;
            for token in &tokens[at..] {
                match token.as_str() {
                    "{" => {
                        depth += 1;
                        expect = depth == 1;
                    }
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    "," if depth == 1 => expect = true,
                    word if expect && depth == 1 && is_ident(word) => {
                        segments.push(word.to_owned());
                        expect = false;
                    }
                    _ => expect = false,
                }
            }
            segments
        }
        Some(word) if is_ident(word) => vec![word.to_owned()],
        _ => Vec::new(),
    }
}

fn is_ident(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && word.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Identifiers, `::`, and single punctuation characters.
fn tokenize(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(chars[start..i].iter().collect());
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push("::".to_owned());
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            tokens.push(c.to_string());
            i += 1;
        }
    }
    tokens
}

/// What a file of `module` names against the layers: each violation as a sentence.
fn violations(module: &[String], source: &str, ranks: &BTreeMap<String, usize>) -> Vec<String> {
    let top = module.first().map_or(ROOT, String::as_str);
    let Some(&own) = ranks.get(top) else {
        return vec![format!("module {top} is not in ARCHITECTURE.md's layers")];
    };
    let mut bad = BTreeSet::new();
    for (name, path) in named(module, source) {
        if name == top {
            continue;
        }
        // Items of the crate root (constants in main.rs) and `*` are not modules.
        let Some(&rank) = ranks.get(&name) else {
            continue;
        };
        if rank >= own {
            let how = if rank == own {
                "its own layer"
            } else {
                "a higher layer"
            };
            bad.insert(format!("{top} names {name} ({how}) through `{path}`"));
        }
    }
    bad.into_iter().collect()
}

#[test]
fn no_module_names_one_of_its_layer_or_above() {
    let layers = layers();
    let ranks = ranks(&layers);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = sources(&src);
    let mut modules = BTreeSet::new();
    let mut bad = Vec::new();
    for (module, path) in &files {
        modules.insert(module.first().cloned().unwrap_or_else(|| ROOT.to_owned()));
        let source = std::fs::read_to_string(path).expect("read source");
        for violation in violations(module, &source, &ranks) {
            bad.push(format!("{}: {violation}", path.display()));
        }
    }
    let drawn: BTreeSet<String> = ranks.keys().cloned().collect();
    let undrawn: Vec<_> = modules.difference(&drawn).collect();
    let stale: Vec<_> = drawn.difference(&modules).collect();
    assert!(
        undrawn.is_empty(),
        "modules missing from ARCHITECTURE.md's layers: {undrawn:?}"
    );
    assert!(
        stale.is_empty(),
        "names in ARCHITECTURE.md's layers that are no module: {stale:?}"
    );
    assert!(
        bad.is_empty(),
        "imports that do not go down:\n{}",
        bad.join("\n")
    );
}

/// The six imports that made the circle of 14 files (and the engine reading the flags) are
/// each caught, in every form a path can take.
#[test]
fn the_old_circle_is_caught() {
    let ranks = ranks(&layers());
    let module = |path: &str| -> Vec<String> { path.split('/').map(str::to_owned).collect() };
    let caught = |file: &str, source: &str, name: &str| {
        let found = violations(&module(file), source, &ranks);
        assert!(
            found.iter().any(|v| v.contains(&format!("names {name} "))),
            "{file}: `{source}` should be caught as naming {name}: {found:?}"
        );
    };
    caught("cork", "use crate::engine::Message;", "engine");
    caught("state", "use crate::engine::Message;", "engine");
    caught(
        "metrics",
        "pub fn count(f: &crate::engine::Fault) {}",
        "engine",
    );
    caught("metrics", "use crate::server::Server;", "server");
    caught(
        "metrics",
        "fn f() { return crate::http::plain(404, \"\"); }",
        "http",
    );
    caught("peer", "use crate::registry::Id;", "registry");
    caught(
        "engine",
        "use crate::cli::{EPOCH_TICK, FIBER_STACK, Settings};",
        "cli",
    );
    // Grouped, re-exported, through `super::` chains, and inside an inline module.
    caught(
        "peer",
        "use crate::{id::Id, registry::Registry};",
        "registry",
    );
    caught("cork", "pub use crate::engine::Message;", "engine");
    caught(
        "engine/imports",
        "use super::super::server::Server;",
        "server",
    );
    caught(
        "cork",
        "mod tests { use super::super::engine::Message; }",
        "engine",
    );
    // Same layer counts as upward: layers are strict.
    caught("admin", "use crate::cli::Args;", "cli");
    // And what is not a path is not caught.
    let clean = |file: &str, source: &str| {
        let found = violations(&module(file), source, &ranks);
        assert!(
            found.is_empty(),
            "{file}: `{source}` is no violation: {found:?}"
        );
    };
    clean(
        "cork",
        "// see crate::engine::Message\nuse crate::wit::Message;",
    );
    clean("cork", "const A: &str = \"crate::engine::x\";");
    clean("engine/imports", "use super::StoreData;");
    clean("cork", "mod tests { use super::*; }");
}
