//! The embedded directory's file: reading it with a content hash, the advisory lock that
//! serialises writers, and the atomic replacement that keeps the owner and mode.
//!
//! Writers of one LDIF file (several `ocsh` processes, the replicator, a REPL) take an
//! exclusive advisory lock on a sidecar file, `.NAME.ocsh-lock` beside it, from the
//! moment they re-read the file to plan their writes against its current content until
//! the rename that publishes the result. The lock is on a sidecar because the LDIF file
//! itself is replaced by every write (a lock on the old inode would protect nothing);
//! the sidecar is never removed, since removing a lock file races with the next writer
//! opening it. Tools that do not take the lock (an editor, `cp -p`, `rsync`) are caught
//! by the content hash instead: the content is hashed when read and re-read under the
//! lock before every write.

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::super::DirError;

/// The content of the file as read, with its hash and a cheap stamp of the inode read.
pub(crate) struct Snapshot {
    /// The raw bytes (UTF-8 or UTF-16 LDIF).
    pub bytes: Vec<u8>,
    /// What [`content_hash`] says of `bytes`.
    pub hash: ContentHash,
    /// The stamp of the very inode the bytes came from (fstat of the open file, not a
    /// second lookup of the path that a rename in between could answer for another file).
    pub stamp: Option<Stamp>,
}

/// A hash of a file's whole content: the test of "changed since it was read" that
/// does not depend on sizes or times, which `cp -p`, `rsync -t` and restores keep.
pub(crate) type ContentHash = blake3::Hash;

/// The hash of `bytes`.
pub(crate) fn content_hash(bytes: &[u8]) -> ContentHash {
    blake3::hash(bytes)
}

/// A cheap hint that a file may have changed: size, modification and status-change
/// times and the inode. Used only to decide whether a reader should re-read (comparing
/// it costs one `stat`); writes never rely on it, they compare [`ContentHash`]es.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    /// ctime and inode on Unix: `cp -p` restores the mtime but not the ctime, and a
    /// rename brings another inode.
    #[cfg(unix)]
    unix: (i64, i64, u64, u64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt as _;
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            unix: (meta.ctime(), meta.ctime_nsec(), meta.ino(), meta.dev()),
        }
    }
}

/// The stamp of whatever `path` names now; `None` when it cannot be read.
pub(crate) fn stamp_of(path: &Path) -> Option<Stamp> {
    fs::metadata(path).ok().map(|m| Stamp::of(&m))
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> DirError + '_ {
    move |source| DirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the whole file through one open handle.
pub(crate) fn read(path: &Path) -> Result<Snapshot, DirError> {
    let io = io_error(path);
    let mut file = fs::File::open(path).map_err(&io)?;
    let meta = file.metadata().map_err(&io)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(&io)?;
    Ok(Snapshot {
        hash: content_hash(&bytes),
        bytes,
        stamp: Some(Stamp::of(&meta)),
    })
}

/// The file a write replaces: the target of a symlink rather than the link.
fn target_of(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The folder of `target` and its file name, for the sidecar and temporary files.
fn folder_and_name(target: &Path) -> (PathBuf, String) {
    let folder = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "directory.ldif".into());
    (folder, name)
}

/// The prefix of this file's temporary files: specific to the file, so that cleaning
/// up after one file (under its lock) never touches another file's write in progress.
fn temp_prefix(name: &str) -> String {
    format!(".{name}.ocsh-")
}

const TEMP_SUFFIX: &str = ".tmp";

/// An exclusive advisory lock on a file's sidecar, released when dropped (closing the
/// handle releases it, and the system releases it when the process dies, even by
/// `kill -9`).
#[derive(Debug)]
pub(crate) struct WriteLock {
    _file: fs::File,
}

/// Takes the write lock of `path`, waiting at most `wait`. Gives up with a message
/// that says who to wait for; nothing has been written then.
pub(crate) fn lock(path: &Path, wait: Duration) -> Result<WriteLock, DirError> {
    let target = target_of(path);
    let (folder, name) = folder_and_name(&target);
    let lock_path = folder.join(format!(".{name}.ocsh-lock"));
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error(&lock_path))?;
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(5);
    loop {
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => return Ok(WriteLock { _file: file }),
            Err(fs4::TryLockError::WouldBlock) => {}
            Err(fs4::TryLockError::Error(source)) => {
                return Err(DirError::Io {
                    path: lock_path,
                    source,
                });
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(DirError::Locked {
                path: path.to_path_buf(),
                lock: lock_path,
                waited: wait,
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Removes the temporary files a killed writer left beside `path`. Call it only while
/// holding the file's [`WriteLock`]: every live writer of this file holds it while its
/// temporary file exists, so any found then is left over.
pub(crate) fn remove_leftover_temps(path: &Path) {
    let target = target_of(path);
    let (folder, name) = folder_and_name(&target);
    let prefix = temp_prefix(&name);
    let Ok(listing) = fs::read_dir(&folder) else {
        return;
    };
    for item in listing.flatten() {
        let file_name = item.file_name();
        let file_name = file_name.to_string_lossy();
        if file_name.starts_with(&prefix) && file_name.ends_with(TEMP_SUFFIX) {
            // A leftover that cannot be removed does no harm; the write goes on.
            let _ = fs::remove_file(item.path());
        }
    }
}

/// Replaces `path` with `text` so that a reader sees the old file or the new one, never
/// a half-written one: a temporary file in the same folder (rename is atomic only
/// within a file system) with the old file's mode and owner, flushed to disk, then
/// renamed over the target. Returns the hash of what was written.
pub(crate) fn write_atomically(path: &Path, text: &str) -> Result<ContentHash, DirError> {
    let io = io_error(path);
    let target = target_of(path);
    let (folder, name) = folder_and_name(&target);
    let mut temp = tempfile::Builder::new()
        .prefix(&temp_prefix(&name))
        .suffix(TEMP_SUFFIX)
        .tempfile_in(&folder)
        .map_err(&io)?;
    // The temporary file is created private and owned by this process; the replaced
    // file keeps its permissions and, where this process may set it, its owner.
    if let Ok(meta) = fs::metadata(&target) {
        temp.as_file()
            .set_permissions(meta.permissions())
            .map_err(&io)?;
        keep_owner(temp.as_file(), &meta).map_err(|source| DirError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                source.kind(),
                format!(
                    "cannot give the new file the old one's owner ({source}); nothing was written"
                ),
            ),
        })?;
    }
    temp.write_all(text.as_bytes()).map_err(&io)?;
    temp.as_file().sync_all().map_err(&io)?;
    temp.persist(&target).map_err(|e| io(e.error))?;
    // Makes the rename itself durable on Unix; directories cannot be opened this way
    // everywhere, and the data is already safe, so a failure here is not an error.
    if let Ok(d) = fs::File::open(&folder) {
        let _ = d.sync_all();
    }
    Ok(content_hash(text.as_bytes()))
}

#[cfg(unix)]
fn keep_owner(file: &fs::File, old: &fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let new = file.metadata()?;
    if (new.uid(), new.gid()) == (old.uid(), old.gid()) {
        return Ok(());
    }
    std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()))
}

#[cfg(not(unix))]
fn keep_owner(_file: &fs::File, _old: &fs::Metadata) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_waits_and_gives_up() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("f.ldif");
        fs::write(&path, "x").unwrap();
        let held = lock(&path, Duration::ZERO).unwrap();
        let started = Instant::now();
        match lock(&path, Duration::from_millis(200)) {
            Err(DirError::Locked { waited, lock, .. }) => {
                assert_eq!(waited, Duration::from_millis(200));
                assert!(lock.ends_with(".f.ldif.ocsh-lock"), "{}", lock.display());
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(held);
        lock(&path, Duration::ZERO).unwrap();
    }

    #[test]
    fn leftover_temps_of_this_file_only_are_removed() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("f.ldif");
        fs::write(&path, "x").unwrap();
        for name in [".f.ldif.ocsh-abc.tmp", ".g.ldif.ocsh-abc.tmp", "f.ldif.tmp"] {
            fs::write(temp.path().join(name), "left").unwrap();
        }
        remove_leftover_temps(&path);
        let mut names: Vec<_> = fs::read_dir(temp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".g.ldif.ocsh-abc.tmp", "f.ldif", "f.ldif.tmp"]);
    }

    #[test]
    fn the_hash_sees_an_edit_that_keeps_size_and_time() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("f.ldif");
        fs::write(&path, "cn: a").unwrap();
        let first = read(&path).unwrap();
        let modified = fs::metadata(&path).unwrap().modified().unwrap();
        fs::write(&path, "cn: b").unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
        let second = read(&path).unwrap();
        assert_ne!(first.hash, second.hash);
        assert_eq!(second.hash, content_hash(b"cn: b"));
    }
}
