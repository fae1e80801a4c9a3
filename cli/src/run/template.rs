//! The command template: replacement strings, and whether the command runs
//! through a shell.
//!
//! Replacement strings (GNU parallel's): `{}` the value (with several
//! sources, all values separated by spaces), `{.}` without its extension,
//! `{/}` its basename, `{//}` its directory, `{/.}` basename without
//! extension, `{#}` the job number, `{%}` the job slot, `{N}` the N-th
//! source's value (and `{N.}`, `{N/}`, `{N//}`, `{N/.}`). With none in the
//! command, the values are appended, one argument each.
//!
//! A command with shell syntax — one of ``| & ; < > ( ) $ ` \ " ' * ? [ ] # ~ !``
//! or `{`/`}` outside replacement strings, a word with whitespace, or a first
//! word that assigns (`VAR=x`) — runs as `/bin/sh -c TEXT`, every substituted
//! value shell-quoted so it stays one word. Any other command is executed
//! directly: each word is one argument, values substituted in place,
//! unquoted. No command at all runs each value as a shell command line.

use std::borrow::Cow;

/// One piece of a word: literal text or a replacement string.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// `source`: `None` for all values; the modifier.
    Value(Option<usize>, Modifier),
    Seq,
    Slot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Modifier {
    Whole,
    NoExtension,
    Basename,
    Dirname,
    BasenameNoExtension,
}

/// How the command runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Executed directly: program and arguments.
    Direct(Vec<String>),
    /// Through `/bin/sh -c`.
    Shell(String),
}

impl Invocation {
    /// The command as one line of shell text (what `--dry-run` prints and
    /// the joblog records; for a direct command, each word quoted as needed).
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Invocation::Shell(text) => Cow::Borrowed(text),
            Invocation::Direct(words) => {
                Cow::Owned(words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" "))
            }
        }
    }
}

/// Quotes `value` for `/bin/sh` (unchanged when it needs no quotes).
pub fn quote(value: &str) -> Cow<'_, str> {
    shlex::try_quote(value).unwrap_or_else(|_| {
        // A NUL byte cannot be passed to a program at all; show it escaped.
        Cow::Owned(format!(
            "'{}'",
            value.replace('\0', "\\0").replace('\'', r"'\''")
        ))
    })
}

/// A parsed command.
#[derive(Clone, Debug)]
pub struct Template {
    /// Each word's pieces.
    words: Vec<Vec<Piece>>,
    shell: bool,
    has_replacement: bool,
}

/// Characters that make a command shell syntax.
const SHELL_CHARS: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', ']', '#', '~',
    '!', '{', '}', '\n', '\t', ' ',
];

/// Parses one word into pieces.
fn parse_word(word: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = word;
    while let Some(open) = rest.find('{') {
        let (before, from) = rest.split_at(open);
        text.push_str(before);
        let close = from.find('}');
        match close.and_then(|c| replacement(&from[1..c]).map(|p| (c, p))) {
            Some((c, piece)) => {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(piece);
                rest = &from[c + 1..];
            }
            None => {
                text.push('{');
                rest = &from[1..];
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    pieces
}

/// The replacement string inside `{...}`, if it is one.
fn replacement(inner: &str) -> Option<Piece> {
    match inner {
        "#" => return Some(Piece::Seq),
        "%" => return Some(Piece::Slot),
        _ => {}
    }
    let digits = inner.len() - inner.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (number, modifier) = inner.split_at(digits);
    let source = match number {
        "" => None,
        n => Some(n.parse::<usize>().ok().filter(|&n| n >= 1)? - 1),
    };
    let modifier = match modifier {
        "" => Modifier::Whole,
        "." => Modifier::NoExtension,
        "/" => Modifier::Basename,
        "//" => Modifier::Dirname,
        "/." => Modifier::BasenameNoExtension,
        _ => return None,
    };
    Some(Piece::Value(source, modifier))
}

fn basename(v: &str) -> &str {
    v.rsplit_once('/').map_or(v, |(_, b)| b)
}

fn dirname(v: &str) -> &str {
    match v.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((d, _)) => d,
        None => ".",
    }
}

/// `v` without the extension of its last path component.
fn no_extension(v: &str) -> &str {
    let base_start = v.len() - basename(v).len();
    match v[base_start..].rfind('.') {
        Some(dot) if dot > 0 => &v[..base_start + dot],
        _ => v,
    }
}

fn apply(v: &str, modifier: Modifier) -> &str {
    match modifier {
        Modifier::Whole => v,
        Modifier::NoExtension => no_extension(v),
        Modifier::Basename => basename(v),
        Modifier::Dirname => dirname(v),
        Modifier::BasenameNoExtension => no_extension(basename(v)),
    }
}

impl Template {
    /// Parses the command words.
    pub fn parse(words: &[String]) -> Template {
        let parsed: Vec<Vec<Piece>> = words.iter().map(|w| parse_word(w)).collect();
        let has_replacement = parsed
            .iter()
            .flatten()
            .any(|p| !matches!(p, Piece::Text(_)));
        let literal_shell = parsed.iter().flatten().any(|p| match p {
            Piece::Text(t) => t.contains(SHELL_CHARS),
            _ => false,
        });
        let assigns = words
            .first()
            .is_some_and(|w| w.split('/').next().is_some_and(|head| head.contains('=')));
        Template {
            shell: words.is_empty() || literal_shell || assigns,
            words: parsed,
            has_replacement,
        }
    }

    /// The highest `{N}` source number used (1-based), if any.
    pub fn max_source(&self) -> Option<usize> {
        self.words
            .iter()
            .flatten()
            .filter_map(|p| match p {
                Piece::Value(Some(n), _) => Some(n + 1),
                _ => None,
            })
            .max()
    }

    /// Whether the command holds `{%}`, the job slot: the same job's
    /// command then differs from slot to slot.
    pub fn uses_slot(&self) -> bool {
        self.words
            .iter()
            .flatten()
            .any(|p| matches!(p, Piece::Slot))
    }

    /// Whether the command runs through `/bin/sh -c`.
    #[cfg(test)]
    pub fn is_shell(&self) -> bool {
        self.shell
    }

    /// The command for one job: `values` (one per source), job number
    /// `seq`, slot `slot`.
    pub fn expand(&self, values: &[String], seq: u64, slot: usize) -> Invocation {
        let all = values.join(" ");
        let value = |source: Option<usize>, modifier: Modifier| -> String {
            match source {
                None if values.len() == 1 => apply(&values[0], modifier).to_owned(),
                None => values
                    .iter()
                    .map(|v| apply(v, modifier))
                    .collect::<Vec<_>>()
                    .join(" "),
                Some(n) => values.get(n).map_or("", |v| apply(v, modifier)).to_owned(),
            }
        };
        if self.words.is_empty() {
            // No command: each value is a command line.
            return Invocation::Shell(all);
        }
        let render = |piece: &Piece, quoted: bool| -> String {
            let raw = match piece {
                Piece::Text(t) => return t.clone(),
                Piece::Value(source, modifier) => value(*source, *modifier),
                Piece::Seq => seq.to_string(),
                Piece::Slot => slot.to_string(),
            };
            if quoted {
                quote(&raw).into_owned()
            } else {
                raw
            }
        };
        if self.shell {
            let mut text = self
                .words
                .iter()
                .map(|w| w.iter().map(|p| render(p, true)).collect::<String>())
                .collect::<Vec<_>>()
                .join(" ");
            if !self.has_replacement {
                for v in values {
                    text.push(' ');
                    text.push_str(&quote(v));
                }
            }
            Invocation::Shell(text)
        } else {
            let mut argv: Vec<String> = self
                .words
                .iter()
                .map(|w| w.iter().map(|p| render(p, false)).collect())
                .collect();
            if !self.has_replacement {
                argv.extend(values.iter().cloned());
            }
            Invocation::Direct(argv)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(cmd: &str) -> Template {
        Template::parse(&cmd.split(' ').map(str::to_owned).collect::<Vec<_>>())
    }

    fn v(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn replacement_strings_like_gnu_parallel() {
        let t = template("echo {} {.} {/} {//} {/.} {#} {%}");
        assert!(!t.is_shell());
        assert_eq!(
            t.expand(&v(&["dir.d/sub/file.tar.gz"]), 7, 2),
            Invocation::Direct(v(&[
                "echo",
                "dir.d/sub/file.tar.gz",
                "dir.d/sub/file.tar",
                "file.tar.gz",
                "dir.d/sub",
                "file.tar",
                "7",
                "2"
            ]))
        );
        assert_eq!(
            template("x {.} {//} {/.}").expand(&v(&["dir.d/file"]), 1, 1),
            Invocation::Direct(v(&["x", "dir.d/file", "dir.d", "file"]))
        );
        assert_eq!(
            template("x {//} {.}").expand(&v(&[".bashrc"]), 1, 1),
            Invocation::Direct(v(&["x", ".", ".bashrc"]))
        );
        let t = template("cp {1} {2/}.bak");
        assert_eq!(t.max_source(), Some(2));
        assert_eq!(
            t.expand(&v(&["a b", "x/y"]), 1, 1),
            Invocation::Direct(v(&["cp", "a b", "y.bak"]))
        );
        // Not replacement strings: literal braces make it shell syntax.
        assert!(template("echo {x}").is_shell());
        assert!(template("echo {0}").is_shell());
    }

    #[test]
    fn values_are_appended_when_no_replacement_string() {
        assert_eq!(
            template("echo -n").expand(&v(&["a b", "c"]), 1, 1),
            Invocation::Direct(v(&["echo", "-n", "a b", "c"]))
        );
        assert_eq!(
            template("echo $HOME").expand(&v(&["a b; rm -rf /"]), 1, 1),
            Invocation::Shell("echo $HOME 'a b; rm -rf /'".into())
        );
    }

    #[test]
    fn shell_syntax_quotes_every_value() {
        let t = Template::parse(&v(&["echo {} | wc -c"]));
        assert!(t.is_shell());
        let Invocation::Shell(text) = t.expand(&v(&["it's $(x)"]), 1, 1) else {
            panic!("not a shell command");
        };
        assert_eq!(text, r#"echo "it's "'$(x)' | wc -c"#);
        // The shell gives the value back unchanged, as one word.
        let out = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                &text.replace("echo", "printf %s").replace(" | wc -c", ""),
            ])
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"it's $(x)");
        assert!(template("A=1 env").is_shell());
        assert!(!template("./bin/a=b x").is_shell());
        assert!(!template("grep -c x").is_shell());
        // No command: each value is a command line, unquoted.
        assert_eq!(
            Template::parse(&[]).expand(&v(&["echo hi | tr a-z A-Z"]), 1, 1),
            Invocation::Shell("echo hi | tr a-z A-Z".into())
        );
    }

    #[test]
    fn text_of_a_direct_command_is_valid_shell() {
        let inv = Invocation::Direct(v(&["echo", "a b", "it's"]));
        assert_eq!(inv.text(), r#"echo 'a b' "it's""#);
    }
}
