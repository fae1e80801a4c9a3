//! `--halt`: when to stop starting jobs (`soon`) or kill the running ones
//! too (`now`), as GNU parallel defines it: after N (or N% of all) jobs
//! failed, succeeded, or finished.

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Fail,
    Success,
    Done,
}

/// A threshold: a count, or a percentage of all the jobs of the run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    Count(u64),
    Percent(f64),
}

/// A parsed `--halt`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Halt {
    /// Kill the running jobs (`now`), or let them finish (`soon`).
    pub now: bool,
    pub condition: Condition,
    pub threshold: Threshold,
}

impl Halt {
    /// Parses `now|soon,fail|success|done=N[%]`, or GNU's shorthands `1`
    /// (soon,fail=1) and `2` (now,fail=1).
    pub fn parse(text: &str) -> Result<Halt, String> {
        let bad = || {
            format!("'{text}' is not now|soon,fail=N|fail=N%|success=N|success=N%|done=N|done=N%")
        };
        match text {
            "1" => return Halt::parse("soon,fail=1"),
            "2" => return Halt::parse("now,fail=1"),
            _ => {}
        }
        let (when, rule) = text.split_once(',').ok_or_else(bad)?;
        let now = match when {
            "now" => true,
            "soon" => false,
            _ => return Err(bad()),
        };
        let (name, value) = rule.split_once('=').ok_or_else(bad)?;
        let condition = match name {
            "fail" => Condition::Fail,
            "success" => Condition::Success,
            "done" => Condition::Done,
            _ => return Err(bad()),
        };
        let threshold = match value.strip_suffix('%') {
            Some(p) => {
                let p: f64 = p.parse().map_err(|_| bad())?;
                if !(p > 0.0 && p <= 100.0) {
                    return Err(format!("{p}% in '{text}' is not in (0%, 100%]"));
                }
                Threshold::Percent(p)
            }
            None => {
                let n: u64 = value.parse().map_err(|_| bad())?;
                if n == 0 {
                    return Err(format!("'{text}': the count must be at least 1"));
                }
                Threshold::Count(n)
            }
        };
        Ok(Halt {
            now,
            condition,
            threshold,
        })
    }

    /// Whether the threshold needs the run's total job count.
    pub fn needs_total(&self) -> bool {
        matches!(self.threshold, Threshold::Percent(_))
    }

    /// Whether to halt, given the jobs that failed and succeeded so far and
    /// the run's total (known when [`needs_total`](Self::needs_total)).
    pub fn reached(&self, failed: u64, succeeded: u64, total: Option<u64>) -> bool {
        let counted = match self.condition {
            Condition::Fail => failed,
            Condition::Success => succeeded,
            Condition::Done => failed + succeeded,
        };
        match self.threshold {
            Threshold::Count(n) => counted >= n,
            Threshold::Percent(p) => {
                total.is_some_and(|t| t > 0 && counted as f64 * 100.0 >= p * t as f64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decides_like_gnu_parallel() {
        let h = Halt::parse("now,fail=2").unwrap();
        assert!(h.now && !h.reached(1, 10, None) && h.reached(2, 0, None));
        let h = Halt::parse("soon,success=50%").unwrap();
        assert!(!h.now && h.needs_total());
        assert!(!h.reached(0, 4, Some(10)) && h.reached(0, 5, Some(10)));
        assert!(Halt::parse("soon,done=3").unwrap().reached(1, 2, None));
        assert_eq!(Halt::parse("1"), Halt::parse("soon,fail=1"));
        assert_eq!(Halt::parse("2"), Halt::parse("now,fail=1"));
        for bad in [
            "",
            "now",
            "now,fail",
            "later,fail=1",
            "now,oops=1",
            "now,fail=0",
            "now,fail=101%",
            "now,fail=x",
        ] {
            assert!(Halt::parse(bad).is_err(), "{bad}");
        }
    }
}
