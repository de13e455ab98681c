//! `read_csv` and `read_lines`: the only file access a script has, and only below the
//! paths granted with `--allow-read`.

use std::path::{Path, PathBuf};

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::host::{HostRef, refuse};

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Files larger than this are refused: scripts read lists, not dumps.
const MAX_FILE: u64 = 64 << 20;

/// `path` made absolute without following what does not exist: its longest existing
/// ancestor canonicalized, the rest appended with `.` and `..` resolved in place.
fn resolve_as_far_as_it_exists(path: &Path) -> Option<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    let base = loop {
        if let Ok(real) = existing.canonicalize() {
            break real;
        }
        rest.push(existing.file_name()?.to_os_string());
        existing = existing.parent()?;
    };
    let mut out = base;
    for part in rest.iter().rev() {
        match part.to_str() {
            Some(".") => {}
            Some("..") => {
                out.pop();
            }
            _ => out.push(part),
        }
    }
    Some(out)
}

/// The canonical path of `path` when a grant covers it (the granted file itself, or a
/// file below a granted folder); otherwise a refusal that names `--allow-read`. The
/// refusal is the same whether the path exists or not, so a script learns nothing of
/// the files outside its grants; inside a grant, a missing file is named as missing.
pub fn granted(grants: &[PathBuf], path: &str) -> Result<PathBuf, String> {
    let refusal = || {
        format!(
            "reading {path} is not allowed: grant it with --allow-read {path} (or --allow-read with a folder that holds it)"
        )
    };
    let covered = |p: &Path| {
        grants
            .iter()
            .any(|g| p == g.as_path() || (g.is_dir() && p.starts_with(g)))
    };
    let resolved = resolve_as_far_as_it_exists(Path::new(path)).ok_or_else(refusal)?;
    if !covered(&resolved) {
        return Err(refusal());
    }
    // Inside a grant: a symbolic link must not lead out of it.
    let real = Path::new(path)
        .canonicalize()
        .map_err(|e| format!("{path}: {e}"))?;
    if covered(&real) {
        Ok(real)
    } else {
        Err(refusal())
    }
}

fn read(host: &HostRef, path: &str) -> Res<String> {
    let real = granted(&host.allow_read, path).map_err(refuse)?;
    let meta = std::fs::metadata(&real).map_err(|e| refuse(format!("{path}: {e}")))?;
    if !meta.is_file() {
        return Err(refuse(format!("{path} is not a file")));
    }
    if meta.len() > MAX_FILE {
        return Err(refuse(format!(
            "{path} is {} bytes; ocsh reads files of at most {MAX_FILE} bytes",
            meta.len()
        )));
    }
    let bytes = std::fs::read(&real).map_err(|e| refuse(format!("{path}: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| refuse(format!("{path} is not UTF-8 text")))?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text))
}

/// Parses CSV text with a header row into maps keyed by the (trimmed) header names.
pub fn parse_csv(path: &str, text: &str) -> Result<Vec<Map>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("{path}: {e}"))?
        .iter()
        .map(str::to_string)
        .collect();
    if headers.iter().any(String::is_empty) {
        return Err(format!("{path}: the header row has an empty column name"));
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("{path}: row {}: {e}", i + 2))?;
        rows.push(
            headers
                .iter()
                .zip(record.iter())
                .map(|(h, v)| (h.as_str().into(), Dynamic::from(v.to_string())))
                .collect(),
        );
    }
    Ok(rows)
}

/// Registers `read_csv` and `read_lines`.
pub fn register(engine: &mut Engine, host: &HostRef) {
    let h = host.clone();
    crate::doc_fn!(
        engine,
        "read_csv",
        "Reads a CSV file with a header row into an array of maps; only paths granted with --allow-read.",
        move |path: ImmutableString| -> Res<Array> {
            let text = read(&h, &path)?;
            Ok(parse_csv(&path, &text)
                .map_err(refuse)?
                .into_iter()
                .map(Dynamic::from_map)
                .collect())
        }
    );
    let h = host.clone();
    crate::doc_fn!(
        engine,
        "read_lines",
        "Reads the non-blank, non-# lines of a text file; only paths granted with --allow-read.",
        move |path: ImmutableString| -> Res<Array> {
            let text = read(&h, &path)?;
            // Blank lines and `#` comments are skipped: lists of leavers are hand-kept files.
            Ok(text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| Dynamic::from(l.to_string()))
                .collect())
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_cover_files_and_folders_only() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("a.csv");
        std::fs::write(&inside, "x\n").unwrap();
        let other = tempfile::NamedTempFile::new().unwrap();
        let grants = vec![dir.path().canonicalize().unwrap()];
        assert!(granted(&grants, inside.to_str().unwrap()).is_ok());
        let err = granted(&grants, other.path().to_str().unwrap()).unwrap_err();
        assert!(err.contains("--allow-read"), "{err}");
        let err = granted(&[], "/etc/shadow").unwrap_err();
        assert_eq!(
            err,
            "reading /etc/shadow is not allowed: grant it with --allow-read /etc/shadow (or --allow-read with a folder that holds it)"
        );
        // `..` out of a granted folder does not escape it
        let sneaky = format!(
            "{}/../{}",
            dir.path().display(),
            other.path().file_name().unwrap().to_string_lossy()
        );
        assert!(granted(&grants, &sneaky).is_err());
    }

    #[test]
    fn csv_rows_become_maps() {
        let rows = parse_csv(
            "u.csv",
            "user, sip ,pool\njdoe,sip:j@x.com,pool01\n alex.kim ,,\n",
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["user"].to_string(), "alex.kim");
        assert_eq!(rows[0]["sip"].to_string(), "sip:j@x.com");
        assert!(
            parse_csv("u.csv", "a,b\n1,2,3\n")
                .unwrap_err()
                .contains("row 2")
        );
    }
}
