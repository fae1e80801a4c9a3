//! `ply demo copy`: real file I/O in a temporary directory that is always
//! removed (on success, on error, and on Ctrl-C).

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ply_core::partition::Chunking;
use ply_os::process::{MapOptions, map_slice};
use ply_os::thread::ThreadPool;

use super::{Backend, Outcome, interrupted};

/// The source files and the copies, under one temporary directory.
pub struct Workspace {
    dir: PathBuf,
    /// Removes the directory if the process is ended by force.
    _registered: crate::interrupt::TempPath,
    files: u64,
    bytes_each: u64,
}

impl Workspace {
    /// Creates the directory and `files` source files of `size_mib` MiB of
    /// pseudo-random bytes.
    pub fn create(files: u64, size_mib: u64) -> Result<Workspace, String> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("ply-copy-{}-{stamp}", std::process::id()));
        // Registered before it exists, so no instant leaves it unlisted.
        let registered = crate::interrupt::TempPath::register(dir.clone());
        // The directory itself with create_dir: a missing TMPDIR is an
        // error, not a path created (and left behind) on the way; and a
        // directory that is not ours is never removed.
        fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        if let Err(e) = fs::create_dir(dir.join("src")) {
            let _ = fs::remove_dir_all(&dir);
            return Err(format!("creating {}: {e}", dir.display()));
        }
        let workspace = Workspace {
            _registered: registered,
            dir,
            files,
            bytes_each: size_mib << 20,
        };
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut block = vec![0u8; 1 << 20];
        for i in 0..files {
            if interrupted() {
                return Err("interrupted".into());
            }
            let path = workspace.source(i);
            let mut file =
                fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            for _ in 0..size_mib {
                for chunk in block.chunks_mut(8) {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    chunk.copy_from_slice(&state.to_le_bytes());
                }
                file.write_all(&block)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        Ok(workspace)
    }

    fn source(&self, i: u64) -> PathBuf {
        self.dir.join("src").join(format!("file-{i}.bin"))
    }

    /// Copies every source file into a directory for `backend`, verifies each
    /// copy against its source byte for byte, and reports the bytes verified.
    pub fn copy_with(&self, backend: Backend, workers: usize) -> Result<Outcome, String> {
        let out = self.dir.join(format!("out-{}", backend.name()));
        let _ = fs::remove_dir_all(&out);
        fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let ids: Vec<u64> = (0..self.files).collect();
        let copy_one = |i: &u64| -> Result<u64, String> {
            if interrupted() {
                return Err("interrupted".into());
            }
            let from = self.source(*i);
            let to = out.join(format!("file-{i}.bin"));
            fs::copy(&from, &to).map_err(|e| format!("{}: {e}", to.display()))?;
            verify(&from, &to)
        };
        let copied: Vec<Result<u64, String>> = match backend {
            Backend::Seq => ids.iter().map(copy_one).collect(),
            Backend::Threads => {
                let pool = ThreadPool::new(workers).map_err(|e| e.to_string())?;
                let slots: Vec<Mutex<Option<Result<u64, String>>>> =
                    ids.iter().map(|_| Mutex::new(None)).collect();
                pool.scope(|s| {
                    for (i, slot) in ids.iter().zip(&slots) {
                        let copy_one = &copy_one;
                        s.spawn(move || {
                            let result = copy_one(i);
                            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                        });
                    }
                });
                slots
                    .into_iter()
                    .map(|m| {
                        m.into_inner()
                            .unwrap_or_else(|e| e.into_inner())
                            .unwrap_or_else(|| Err("a copy task did not run".into()))
                    })
                    .collect()
            }
            Backend::Processes => {
                let options = MapOptions::new()
                    .workers(workers)
                    .chunking(Chunking::Fixed(1));
                map_slice(&ids, copy_one, &options).map_err(|e| e.to_string())?
            }
        };
        let mut total = 0;
        for result in copied {
            total += result?;
        }
        let expected = self.files * self.bytes_each;
        if total != expected {
            return Err(format!("verified {total} bytes, expected {expected}"));
        }
        Ok(Outcome::new(
            format!(
                "{} files, {} MiB copied and verified",
                self.files,
                total >> 20
            ),
            total.to_string(),
        ))
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Compares two files byte for byte; returns their length.
fn verify(a: &Path, b: &Path) -> Result<u64, String> {
    let open = |p: &Path| fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut total = 0u64;
    loop {
        let na = read_full(&mut fa, &mut ba).map_err(|e| format!("{}: {e}", a.display()))?;
        let nb = read_full(&mut fb, &mut bb).map_err(|e| format!("{}: {e}", b.display()))?;
        if na != nb || ba[..na] != bb[..nb] {
            return Err(format!("{} differs from {}", b.display(), a.display()));
        }
        if na == 0 {
            return Ok(total);
        }
        total += na as u64;
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}
