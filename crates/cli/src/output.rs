//! Writing output all or nothing.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use tf_io::Encoded;

/// Writes `data` to `path` (stdout for `None` or `-`). A file is written to a temporary file in
/// the same directory and renamed into place, so a failed run leaves no partial output.
pub(crate) fn write_atomically(path: Option<&Path>, data: &Encoded) -> anyhow::Result<()> {
    match path {
        None => write_stdout(data),
        Some(p) if p.as_os_str() == "-" => write_stdout(data),
        Some(p) => {
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let name = p.display();
            let mut tmp = tempfile::Builder::new()
                .prefix(".tf-tmp-")
                .tempfile_in(dir)
                .with_context(|| format!("{name}: cannot create a file in {}", dir.display()))?;
            data.write_to(tmp.as_file_mut()).with_context(|| format!("{name}: write failed"))?;
            // Temporary files are private (0600); the output is an ordinary file.
            use std::os::unix::fs::PermissionsExt;
            let mode =
                std::fs::metadata(p).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o644);
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("{name}: cannot set permissions"))?;
            tmp.persist(p).map_err(|e| e.error).with_context(|| format!("{name}: cannot write"))?;
            Ok(())
        }
    }
}

fn write_stdout(data: &Encoded) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    data.write_to(&mut lock).context("writing to stdout")?;
    lock.flush().context("writing to stdout")
}
