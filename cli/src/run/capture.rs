//! A job's captured output: in memory up to a bound, then in an unnamed
//! temporary file (`O_TMPFILE`: it has no name, so it is gone when closed,
//! even if ply is killed). Memory is bounded across all jobs by a shared
//! budget, so thousands of jobs or one job printing 200 MiB cost the same
//! few MiB.

use std::fs::File;
use std::io::{self, Read, Seek, Write};

/// Bytes of output held in memory across all jobs before new output spills
/// to temporary files.
pub const MEMORY_BUDGET: usize = 16 << 20;

/// What the captures of all jobs hold in memory.
#[derive(Debug, Default)]
pub struct Budget {
    pub in_memory: usize,
}

/// One stream's captured bytes.
#[derive(Debug, Default)]
pub struct Capture {
    memory: Vec<u8>,
    /// Bytes of `memory` already handed over by [`Capture::drain_some`].
    handed: usize,
    spill: Option<File>,
    /// The spill file is being read back (rewound once).
    reading_spill: bool,
    len: u64,
}

impl Capture {
    /// Appends `bytes`: to memory while the budget allows, else to the
    /// spill file (created on first need).
    pub fn push(&mut self, bytes: &[u8], budget: &mut Budget) -> io::Result<()> {
        self.len += bytes.len() as u64;
        if self.spill.is_none() && budget.in_memory + bytes.len() <= MEMORY_BUDGET {
            budget.in_memory += bytes.len();
            self.memory.extend_from_slice(bytes);
            return Ok(());
        }
        let spill = match &mut self.spill {
            Some(file) => file,
            None => self.spill.insert(tempfile::tempfile()?),
        };
        spill.write_all(bytes)
    }

    /// Bytes captured in all.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Hands the next bytes captured, at most `max`, to `emit`, in order;
    /// returns how many (0 when everything has been handed over). Memory
    /// goes back to the budget once all of it has been handed over.
    pub fn drain_some(
        &mut self,
        budget: &mut Budget,
        max: usize,
        emit: &mut dyn FnMut(&[u8]),
    ) -> io::Result<usize> {
        if self.handed < self.memory.len() {
            let n = max.min(self.memory.len() - self.handed);
            emit(&self.memory[self.handed..self.handed + n]);
            self.handed += n;
            if self.handed == self.memory.len() {
                budget.in_memory -= self.memory.len();
                self.memory = Vec::new();
                self.handed = 0;
            }
            return Ok(n);
        }
        let Some(spill) = &mut self.spill else {
            return Ok(0);
        };
        if !self.reading_spill {
            spill.rewind()?;
            self.reading_spill = true;
        }
        let mut buf = vec![0u8; max.min(64 << 10)];
        let n = spill.read(&mut buf)?;
        if n == 0 {
            self.spill = None;
        } else {
            emit(&buf[..n]);
        }
        Ok(n)
    }

    /// Drops everything captured, returning its memory to the budget.
    pub fn discard(&mut self, budget: &mut Budget) {
        budget.in_memory -= self.memory.len();
        self.memory = Vec::new();
        self.handed = 0;
        self.spill = None;
    }

    /// Whether anything spilled to a file.
    #[cfg(test)]
    pub fn spilled(&self) -> bool {
        self.spill.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_past_the_budget_and_drains_in_order() {
        let mut budget = Budget {
            in_memory: MEMORY_BUDGET - 10,
        };
        let mut c = Capture::default();
        c.push(b"0123456789", &mut budget).unwrap();
        assert!(!c.spilled());
        c.push(b"abc", &mut budget).unwrap();
        assert!(c.spilled());
        c.push(b"def", &mut budget).unwrap();
        assert_eq!(c.len(), 16);
        let mut out = Vec::new();
        // Handed over in pieces of at most 4 bytes, memory first.
        loop {
            let n = c
                .drain_some(&mut budget, 4, &mut |b| {
                    assert!(b.len() <= 4);
                    out.extend_from_slice(b)
                })
                .unwrap();
            if n == 0 {
                break;
            }
        }
        assert_eq!(out, b"0123456789abcdef");
        assert_eq!(budget.in_memory, MEMORY_BUDGET - 10);
        let mut d = Capture::default();
        d.push(b"xyz", &mut budget).unwrap();
        d.discard(&mut budget);
        assert_eq!(budget.in_memory, MEMORY_BUDGET - 10);
    }
}
