//! `--term-seq`: how a job is stopped — signals to its whole tree, each
//! followed by a wait for the leader to exit, ending with SIGKILL (as GNU
//! parallel's option of that name; ply's default is TERM, 1 s, KILL).

use std::time::Duration;

/// Steps: send the signal, then wait up to the duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TermSeq {
    pub steps: Vec<(i32, Duration)>,
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

fn parse_signal(text: &str) -> Result<i32, String> {
    let name = text.strip_prefix("SIG").unwrap_or(text);
    if let Some(&(_, sig)) = SIGNALS.iter().find(|(n, _)| *n == name) {
        return Ok(sig);
    }
    match name.parse::<i32>() {
        Ok(sig) if (1..=64).contains(&sig) => Ok(sig),
        _ => Err(format!(
            "'{text}' is not a signal (TERM, INT, HUP, KILL, ... or 1-64)"
        )),
    }
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
        if steps.last().is_none_or(|&(sig, _)| sig != libc::SIGKILL) {
            steps.push((libc::SIGKILL, Duration::from_millis(25)));
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
                (libc::SIGTERM, Duration::from_millis(200)),
                (libc::SIGINT, Duration::from_millis(100)),
                (libc::SIGKILL, Duration::from_millis(25)),
            ]
        );
        assert_eq!(TermSeq::parse("KILL").unwrap().steps.len(), 1);
        assert_eq!(TermSeq::parse("15,10").unwrap().steps[0].0, libc::SIGTERM);
        for bad in ["", "TERMINATE,1", "TERM,x", "TERM,99999999", "0"] {
            assert!(TermSeq::parse(bad).is_err(), "{bad}");
        }
    }
}
