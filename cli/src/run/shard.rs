//! `--shard`: run one contiguous share of the jobs, the same on every
//! machine of an array job, through ply-core's `partition::shard`.
//!
//! `auto` reads the array index the scheduler exports:
//! - Slurm job arrays: `SLURM_ARRAY_TASK_ID`, `_MIN`, `_MAX`, `_STEP`,
//!   `_COUNT` (`sbatch --array=1-8` or `0-15:2`);
//! - AWS Batch array jobs: `AWS_BATCH_JOB_ARRAY_INDEX`, `AWS_BATCH_JOB_ARRAY_SIZE`;
//! - Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX`, with the total given
//!   as `auto/N` (Kubernetes does not export `completions`).

use std::ops::Range;

/// A parsed `--shard`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardSpec {
    /// Shard `k` (0-based) of `n`.
    Fixed { k: usize, n: usize },
    /// From the environment; `Some(n)` when the total was given.
    Auto(Option<usize>),
}

/// Most shards.
const MAX_SHARDS: usize = 1_000_000;

fn parse_count(text: &str, what: &str) -> Result<usize, String> {
    text.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_SHARDS).contains(n))
        .ok_or_else(|| format!("{what} '{text}' is not 1..={MAX_SHARDS}"))
}

impl ShardSpec {
    /// Parses `K/N` (1 <= K <= N), `auto` or `auto/N`.
    pub fn parse(text: &str) -> Result<ShardSpec, String> {
        if text == "auto" {
            return Ok(ShardSpec::Auto(None));
        }
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not K/N, auto or auto/N"))?;
        let n = parse_count(n, "N")?;
        if k == "auto" {
            return Ok(ShardSpec::Auto(Some(n)));
        }
        let k = parse_count(k, "K")?;
        if k > n {
            return Err(format!("shard {k}/{n}: K must be 1..={n}"));
        }
        Ok(ShardSpec::Fixed { k: k - 1, n })
    }

    /// `(k, n)` (0-based k), reading the environment for `auto` through `var`.
    pub fn resolve(self, var: &dyn Fn(&str) -> Option<String>) -> Result<(usize, usize), String> {
        let (k, n) = match self {
            ShardSpec::Fixed { k, n } => return Ok((k, n)),
            ShardSpec::Auto(total) => {
                let (k, n) = if let Some(id) = var("SLURM_ARRAY_TASK_ID") {
                    slurm(&id, var)?
                } else if let Some(index) = var("AWS_BATCH_JOB_ARRAY_INDEX") {
                    let size = var("AWS_BATCH_JOB_ARRAY_SIZE").ok_or(
                        "AWS_BATCH_JOB_ARRAY_INDEX is set but AWS_BATCH_JOB_ARRAY_SIZE is not: use --shard auto/N",
                    );
                    let n = match (size, total) {
                        (Ok(size), _) => number("AWS_BATCH_JOB_ARRAY_SIZE", &size)?,
                        (Err(_), Some(n)) => n,
                        (Err(e), None) => return Err(e.into()),
                    };
                    (number("AWS_BATCH_JOB_ARRAY_INDEX", &index)?, n)
                } else if let Some(index) = var("JOB_COMPLETION_INDEX") {
                    let n = total.ok_or(
                        "JOB_COMPLETION_INDEX is set but Kubernetes does not export the job's completions: use --shard auto/N",
                    )?;
                    (number("JOB_COMPLETION_INDEX", &index)?, n)
                } else {
                    return Err("--shard auto: none of SLURM_ARRAY_TASK_ID, AWS_BATCH_JOB_ARRAY_INDEX, JOB_COMPLETION_INDEX is set".into());
                };
                if let Some(total) = total
                    && total != n
                {
                    return Err(format!(
                        "--shard auto/{total}, but the scheduler says {n} shards"
                    ));
                }
                (k, n)
            }
        };
        if n == 0 || k >= n {
            return Err(format!("shard index {k} is not below the shard count {n}"));
        }
        Ok((k, n))
    }
}

fn number(name: &str, value: &str) -> Result<usize, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{name}='{value}' is not a number"))
}

/// `(k, n)` from a Slurm array: tasks MIN, MIN+STEP, ... MAX.
fn slurm(id: &str, var: &dyn Fn(&str) -> Option<String>) -> Result<(usize, usize), String> {
    let get = |name: &str| -> Result<usize, String> {
        let value =
            var(name).ok_or_else(|| format!("SLURM_ARRAY_TASK_ID is set but {name} is not"))?;
        number(name, &value)
    };
    let id = number("SLURM_ARRAY_TASK_ID", id)?;
    let (min, max) = (get("SLURM_ARRAY_TASK_MIN")?, get("SLURM_ARRAY_TASK_MAX")?);
    let step = match var("SLURM_ARRAY_TASK_STEP") {
        Some(s) => number("SLURM_ARRAY_TASK_STEP", &s)?.max(1),
        None => 1,
    };
    if id < min || id > max || (id - min) % step != 0 {
        return Err(format!(
            "SLURM_ARRAY_TASK_ID={id} is not in {min}-{max}:{step}"
        ));
    }
    let n = match var("SLURM_ARRAY_TASK_COUNT") {
        Some(c) => number("SLURM_ARRAY_TASK_COUNT", &c)?,
        None => (max - min) / step + 1,
    };
    Ok(((id - min) / step, n))
}

/// The job indices (0-based, over all `total` jobs) of shard `k` of `n`.
pub fn range(k: usize, n: usize, total: u64) -> Result<Range<u64>, String> {
    let total = usize::try_from(total).map_err(|_| "too many jobs to shard".to_string())?;
    ply_core::partition::shard(k, n, total)
        .map(|r| r.start as u64..r.end as u64)
        .map_err(|e| format!("shard {}/{n}: {e}", k + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn fixed_shards_are_one_based_on_the_command_line() {
        assert_eq!(ShardSpec::parse("1/4"), Ok(ShardSpec::Fixed { k: 0, n: 4 }));
        assert_eq!(ShardSpec::parse("auto/8"), Ok(ShardSpec::Auto(Some(8))));
        for bad in ["0/4", "5/4", "x/4", "1/0", "1", "auto/0", ""] {
            assert!(ShardSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn auto_reads_slurm_aws_and_kubernetes() {
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "14"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_MAX", "16"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ]);
        assert_eq!(ShardSpec::Auto(None).resolve(&slurm), Ok((2, 4)));
        let aws = env(&[
            ("AWS_BATCH_JOB_ARRAY_INDEX", "3"),
            ("AWS_BATCH_JOB_ARRAY_SIZE", "5"),
        ]);
        assert_eq!(ShardSpec::Auto(None).resolve(&aws), Ok((3, 5)));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "7")]);
        assert_eq!(ShardSpec::Auto(Some(8)).resolve(&k8s), Ok((7, 8)));
        assert!(
            ShardSpec::Auto(None)
                .resolve(&k8s)
                .unwrap_err()
                .contains("auto/N")
        );
        assert!(ShardSpec::Auto(Some(4)).resolve(&k8s).is_err());
        assert!(
            ShardSpec::Auto(None)
                .resolve(&env(&[]))
                .unwrap_err()
                .contains("none of")
        );
        let bad = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_MAX", "16"),
        ]);
        assert!(ShardSpec::Auto(None).resolve(&bad).is_err());
    }

    #[test]
    fn shards_cover_every_job_once() {
        for total in [0u64, 1, 7, 100] {
            let mut seen = vec![0; total as usize];
            for k in 0..5 {
                for i in range(k, 5, total).unwrap() {
                    seen[i as usize] += 1;
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "{total}: {seen:?}");
        }
    }
}
