//! `--term-seq`: how a job is stopped — signals to its whole tree, each
//! followed by a wait for the leader to exit, ending with SIGKILL (as GNU
//! parallel's option of that name; ply's default is TERM, 1 s, KILL).

use std::time::Duration;

use ply_os::fork::Signal;

/// Steps: send the signal, then wait up to the duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TermSeq {
    pub steps: Vec<(Signal, Duration)>,
}

/// Signal names accepted, with or without `SIG`.
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("TERM", libc::SIGTERM),
    ("KILL", libc::SIGKILL),
    ("CONT", libc::SIGCONT),
];

fn parse_signal(text: &str) -> Result<Signal, String> {
    let name = text.strip_prefix("SIG").unwrap_or(text);
    let raw = match SIGNALS.iter().find(|(n, _)| *n == name) {
        Some(&(_, sig)) => Some(sig),
        None => name.parse::<i32>().ok(),
    };
    raw.and_then(Signal::from_named_raw).ok_or_else(|| {
        format!("'{text}' is not a signal (TERM, INT, HUP, KILL, ... or its number)")
    })
}

impl TermSeq {
    /// Parses `SIG,MS,SIG,MS,...` (the last wait may be omitted). A final
    /// KILL with a 25 ms wait is added when the sequence does not end with
    /// one, so a job always ends.
    pub fn parse(text: &str) -> Result<TermSeq, String> {
        let parts: Vec<&str> = text.split(',').collect();
        let mut steps = Vec::new();
        for pair in parts.chunks(2) {
            let sig = parse_signal(pair[0].trim())?;
            let ms = match pair.get(1) {
                Some(ms) => ms
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&ms| ms <= 3_600_000)
                    .ok_or_else(|| format!("'{ms}' in --term-seq is not 0..=3600000 ms"))?,
                None => 25,
            };
            steps.push((sig, Duration::from_millis(ms)));
        }
        if steps.last().is_none_or(|&(sig, _)| sig != Signal::KILL) {
            steps.push((Signal::KILL, Duration::from_millis(25)));
        }
        Ok(TermSeq { steps })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_always_end_in_kill() {
        let t = TermSeq::parse("TERM,200,SIGINT,100").unwrap();
        assert_eq!(
            t.steps,
            [
                (Signal::TERM, Duration::from_millis(200)),
                (Signal::INT, Duration::from_millis(100)),
                (Signal::KILL, Duration::from_millis(25)),
            ]
        );
        assert_eq!(TermSeq::parse("KILL").unwrap().steps.len(), 1);
        assert_eq!(TermSeq::parse("15,10").unwrap().steps[0].0, Signal::TERM);
        for bad in ["", "TERMINATE,1", "TERM,x", "TERM,99999999", "0"] {
            assert!(TermSeq::parse(bad).is_err(), "{bad}");
        }
    }
}
