//! Reading one input, bounded: a file larger than [`MAX_FILE_BYTES`] is reported, not read.

use std::io::Read;

use crate::findings::Source;

/// Largest input file read (larger files are reported, not read).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

pub(crate) fn read_source(src: &Source) -> Result<std::borrow::Cow<'_, [u8]>, ReadError> {
    match src {
        Source::Stdin(b) | Source::Rendered { bytes: b, .. } => {
            Ok(std::borrow::Cow::Borrowed(b.as_slice()))
        }
        Source::File(p) => {
            let f = std::fs::File::open(p)?;
            let mut buf = Vec::new();
            f.take(MAX_FILE_BYTES + 1).read_to_end(&mut buf)?;
            if buf.len() as u64 > MAX_FILE_BYTES {
                return Err(ReadError::TooLarge(MAX_FILE_BYTES >> 20));
            }
            Ok(std::borrow::Cow::Owned(buf))
        }
    }
}

/// Why an input was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    /// The file is larger than [`MAX_FILE_BYTES`] (in MiB).
    #[error("larger than {0} MiB; not read")]
    TooLarge(u64),
}
