//! The files ocsh reads as input (the `--directory` LDIF, `--config`, `--password-file`,
//! `--ca-file`, scripts and snippet modules): a regular file of bounded size, checked
//! before it is opened, so a device such as `/dev/zero` or a FIFO is refused with a
//! clear error instead of being read until memory runs out or waited on forever.

use std::io::{Error, ErrorKind, Read};
use std::path::Path;

/// The largest LDIF file ocsh loads: it holds the whole directory in memory.
pub const MAX_LDIF: u64 = 4 << 30;
/// The largest script or snippet module.
pub const MAX_SCRIPT: u64 = 16 << 20;
/// The largest config, password or CA file.
pub const MAX_SMALL: u64 = 1 << 20;

fn refused(why: String) -> Error {
    Error::new(ErrorKind::InvalidInput, why)
}

fn check_metadata(meta: &std::fs::Metadata, max: u64) -> Result<(), Error> {
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a folder"
        } else {
            special_kind(&kind)
        };
        return Err(refused(format!(
            "{what}, not a regular file; ocsh reads input only from regular files"
        )));
    }
    if meta.len() > max {
        return Err(refused(format!(
            "{} bytes, larger than the {} bytes ocsh reads from such a file",
            meta.len(),
            max
        )));
    }
    Ok(())
}

#[cfg(unix)]
fn special_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// Ok when `path` is a regular file of at most `max` bytes (symlinks followed).
pub fn check(path: &Path, max: u64) -> Result<(), Error> {
    check_metadata(&std::fs::metadata(path)?, max)
}

/// Reads `path` after [`check`]: checked again on the open handle, and never more than
/// `max` bytes even if the file grows meanwhile.
pub fn read(path: &Path, max: u64) -> Result<Vec<u8>, Error> {
    check(path, max)?;
    let file = std::fs::File::open(path)?;
    check_metadata(&file.metadata()?, max)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(refused(format!(
            "grew past the {max} bytes ocsh reads from such a file while it was read"
        )));
    }
    Ok(bytes)
}

/// [`read`] as UTF-8 text.
pub fn read_text(path: &Path, max: u64) -> Result<String, Error> {
    String::from_utf8(read(path, max)?)
        .map_err(|_| Error::new(ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_devices_and_large_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = read(dir.path(), MAX_SMALL).unwrap_err();
        assert!(
            e.to_string().contains("a folder, not a regular file"),
            "{e}"
        );
        #[cfg(unix)]
        {
            let e = read(Path::new("/dev/zero"), MAX_SMALL).unwrap_err();
            assert!(e.to_string().contains("a device"), "{e}");
        }
        let big = dir.path().join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_SMALL + 1)
            .unwrap();
        let e = read(&big, MAX_SMALL).unwrap_err();
        assert!(
            e.to_string().contains("larger than the 1048576 bytes"),
            "{e}"
        );
        let ok = dir.path().join("ok");
        std::fs::write(&ok, "text").unwrap();
        assert_eq!(read_text(&ok, MAX_SMALL).unwrap(), "text");
    }
}
