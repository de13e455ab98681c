//! `import "ocs/bulk" as bulk;`: the stdlib shipped inside the binary first, then the
//! snippet folders granted with `--lib`, the profile and `OCSH_LIB`, and nothing else.
//!
//! Rhai's own file resolver is no jail (absolute paths and `..` pass), so ocsh resolves
//! imports itself: a module name is a relative path of `[A-Za-z0-9_-]` segments.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared};

/// The stdlib modules, by import name. A test checks that every file of `stdlib/` is here.
pub const STDLIB: &[(&str, &str)] = &[
    ("ocs/bulk", include_str!("../../stdlib/ocs/bulk.rhai")),
    ("ocs/flags", include_str!("../../stdlib/ocs/flags.rhai")),
    ("ocs/report", include_str!("../../stdlib/ocs/report.rhai")),
    ("ocs/sip", include_str!("../../stdlib/ocs/sip.rhai")),
];

/// Resolves imports from the stdlib and the granted folders, with cycle detection.
pub struct Resolver {
    folders: Vec<PathBuf>,
    /// How many modules may be loading at once (`max-import-depth`): each nests a
    /// whole evaluation on the native stack.
    max_depth: usize,
    cache: RefCell<HashMap<String, Shared<Module>>>,
    /// The chain of modules being loaded, for cycle and "imported from" messages.
    loading: RefCell<Vec<String>>,
}

fn err(message: String, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorInModule(
        String::new(),
        Box::new(EvalAltResult::ErrorRuntime(message.into(), pos)),
        pos,
    ))
}

/// Checks a module name: relative, no `..`, no drive or backslash, plain segments.
pub fn check_name(name: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "import \"{name}\" is refused: {why}; imports name modules such as \"ocs/bulk\" in the stdlib or a --lib folder"
        ))
    };
    if name.is_empty() {
        return bad("the name is empty");
    }
    if name.starts_with('/') || name.starts_with('\\') || name.contains(':') {
        return bad("absolute paths are not allowed");
    }
    for seg in name.split('/') {
        if seg == ".." || seg == "." {
            return bad("'..' and '.' are not allowed");
        }
        if seg.is_empty()
            || !seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return bad("a segment may hold only letters, digits, '_' and '-'");
        }
    }
    Ok(())
}

impl Resolver {
    /// A resolver over `folders` (in order, after the stdlib), loading at most
    /// `max_depth` modules inside each other.
    pub fn new(folders: Vec<PathBuf>, max_depth: usize) -> Resolver {
        Resolver {
            folders,
            max_depth,
            cache: RefCell::new(HashMap::new()),
            loading: RefCell::new(Vec::new()),
        }
    }

    fn source_of(&self, name: &str) -> Result<(String, String), String> {
        if let Some((_, text)) = STDLIB.iter().find(|(n, _)| *n == name) {
            return Ok((format!("stdlib:{name}"), (*text).to_string()));
        }
        for dir in &self.folders {
            let file: PathBuf = dir.join(format!("{name}.rhai"));
            if file.is_file() {
                let text = crate::directory::input_file::read_text(
                    &file,
                    crate::directory::input_file::MAX_SCRIPT,
                )
                .map_err(|e| format!("{}: {e}", file.display()))?;
                return Ok((file.display().to_string(), text));
            }
        }
        let searched = if self.folders.is_empty() {
            "the stdlib (no --lib folder given)".to_string()
        } else {
            format!(
                "the stdlib and {}",
                self.folders
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        Err(format!("module \"{name}\" not found in {searched}"))
    }

    fn chain(&self, name: &str) -> String {
        let loading = self.loading.borrow();
        if loading.is_empty() {
            return String::new();
        }
        let mut chain: Vec<&str> = loading.iter().map(String::as_str).collect();
        chain.push(name);
        format!(" (import chain: {})", chain.join(" → "))
    }
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        check_name(path).map_err(|m| err(m, pos))?;
        if let Some(m) = self.cache.borrow().get(path) {
            return Ok(m.clone());
        }
        if self.loading.borrow().iter().any(|p| p == path) {
            return Err(err(format!("import cycle{}", self.chain(path)), pos));
        }
        if self.loading.borrow().len() >= self.max_depth {
            return Err(Box::new(EvalAltResult::ErrorTerminated(
                rhai::Dynamic::from(super::limits::LimitBroken {
                    limit: super::limits::Limit::ImportDepth,
                    value: self.max_depth as u64,
                }),
                pos,
            )));
        }
        let (origin, text) = self
            .source_of(path)
            .map_err(|m| err(format!("{m}{}", self.chain(path)), pos))?;
        let mut ast = engine.compile(&text).map_err(|e| {
            err(
                format!(
                    "{origin}:{}:{}: {}{}",
                    e.position().line().unwrap_or(0),
                    e.position().position().unwrap_or(0),
                    e.err_type(),
                    self.chain(path)
                ),
                pos,
            )
        })?;
        ast.set_source(origin.as_str());
        self.loading.borrow_mut().push(path.to_string());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine);
        self.loading.borrow_mut().pop();
        let module: Shared<Module> = module?.into();
        self.cache
            .borrow_mut()
            .insert(path.to_string(), module.clone());
        Ok(module)
    }
}

/// The folders of an `OCSH_LIB`-style path list.
pub fn split_path_list(list: &str) -> Vec<PathBuf> {
    std::env::split_paths(list)
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// True when `path` names an existing folder (for clear `--lib` errors).
pub fn is_folder(path: &Path) -> bool {
    path.is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_jailed() {
        assert!(check_name("ocs/bulk").is_ok());
        assert!(check_name("team-lib/sales_v2").is_ok());
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../b",
            "C:/x",
            "a\\b",
            "",
            "a//b",
            "./a",
            "a.rhai",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(
            check_name("/etc/passwd")
                .unwrap_err()
                .contains("absolute paths are not allowed")
        );
    }

    #[test]
    fn every_stdlib_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("stdlib");
        let mut on_disk = Vec::new();
        for dir in std::fs::read_dir(&root).unwrap() {
            let dir = dir.unwrap().path();
            for f in std::fs::read_dir(&dir).unwrap() {
                let f = f.unwrap().path();
                let rel = f.strip_prefix(&root).unwrap().with_extension("");
                on_disk.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
        on_disk.sort();
        let embedded: Vec<String> = STDLIB.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn every_stdlib_module_declares_its_reach() {
        for (name, text) in STDLIB {
            let header = crate::script::header::Header::parse(text).unwrap();
            assert!(header.reach.is_declared(), "{name} declares no reach");
        }
    }
}
