//! Runs the SIPVicious scanners against the server and keeps what they
//! print.
//!
//! SIPVicious OSS is what drive-by attackers point at SIP servers:
//! `svmap` finds SIP servers (an OPTIONS to each address), `svwar` guesses
//! extensions (it compares the answer for a random, surely unknown user
//! with the answers for candidates), `svcrack` guesses an extension's
//! password from a dictionary. Debian's `sipvicious` (0.3.x) installs them
//! as `svmap`, `svwar` and `svcrack`; they speak UDP only.
//!
//! Every run binds a fresh local port on 127.0.0.1 (`-P`; the tools'
//! default is 5060), names 127.0.0.1 as its own address in Via (`-x`;
//! otherwise the tools look up the host name, which may give another
//! address), logs at debug level (`-vvv`: `svwar` then prints each
//! candidate it sends, `svcrack` each password it tries) and is killed
//! if it outlives its time limit. Its standard output and error go to one
//! file in the test's directory; [`ScanOutcome`] holds that text and the
//! result table the tool prints at the end.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::sipp::free_port;
use crate::{require_program, wait_for};

/// One scanner invocation being assembled.
#[derive(Debug, Clone)]
pub struct Scan {
    /// `svmap`, `svwar` or `svcrack`.
    program: &'static str,
    /// The server's UDP SIP address.
    target: SocketAddr,
    /// The tool's own options.
    args: Vec<String>,
    /// After this the harness kills the tool.
    timeout: Duration,
}

impl Scan {
    /// `svmap`: is there a SIP server at `target`, and what does it call
    /// itself?
    pub fn svmap(target: SocketAddr) -> Scan {
        Scan::new("svmap", target)
    }

    /// `svwar`: which extensions exist? Give the candidates with `-e` and
    /// the request method with `-m`.
    pub fn svwar(target: SocketAddr) -> Scan {
        Scan::new("svwar", target)
    }

    /// `svcrack -u <user>`: what is this user's password? Give the
    /// candidates with `-d <dictionary>`.
    pub fn svcrack(target: SocketAddr, user: &str) -> Scan {
        Scan::new("svcrack", target).arg("-u").arg(user)
    }

    fn new(program: &'static str, target: SocketAddr) -> Scan {
        Scan {
            program,
            target,
            args: Vec::new(),
            timeout: Duration::from_secs(60),
        }
    }

    /// Any option of the tool.
    pub fn arg(mut self, arg: &str) -> Scan {
        self.args.push(arg.to_owned());
        self
    }

    /// Upper bound for the run; past it the tool is killed.
    pub fn timeout(mut self, timeout: Duration) -> Scan {
        self.timeout = timeout;
        self
    }

    /// Runs the tool with its output in `dir/<label>.log` and waits for it.
    pub fn run(self, dir: &Path, label: &str) -> ScanOutcome {
        let program = require_program(self.program);
        let log = dir.join(format!("{label}.log"));
        let out = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone a file handle: {e}"));
        let mut cmd = Command::new(&program);
        cmd.args(["-p", &self.target.port().to_string()])
            .args(["-b", "127.0.0.1", "-x", "127.0.0.1"])
            .args(["-P", &free_port(false).to_string(), "-vvv"])
            .args(&self.args)
            .arg(self.target.ip().to_string())
            // Python buffers stdout in a file; the table comes out at exit
            // either way, but a killed run keeps what it printed.
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let command_line = format!("{} {}", self.program, shell_words(&cmd));
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let status = wait_for(self.timeout, || child.try_wait().ok().flatten());
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let outcome = ScanOutcome {
            command_line,
            exit_code: status.and_then(|s| s.code()),
            killed: status.is_none(),
            elapsed: started.elapsed(),
            output: std::fs::read_to_string(&log).unwrap_or_default(),
            log,
        };
        // Shown with the test's output: how long each scan took.
        eprintln!(
            "{label}: {} results, {:.1}s{}",
            outcome.results().len(),
            outcome.elapsed.as_secs_f64(),
            if outcome.killed { ", killed" } else { "" }
        );
        outcome
    }
}

/// The arguments of `cmd`, for a failure message.
fn shell_words(cmd: &Command) -> String {
    cmd.get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What one scanner run printed.
#[derive(Debug)]
pub struct ScanOutcome {
    /// The command, for messages.
    pub command_line: String,
    /// The tool's exit code; `None` when it was killed.
    pub exit_code: Option<i32>,
    /// Whether the harness killed it at its time limit.
    pub killed: bool,
    /// How long it ran.
    pub elapsed: Duration,
    /// Its standard output and error.
    pub output: String,
    /// The file they are in.
    pub log: PathBuf,
}

impl ScanOutcome {
    /// The rows of the result table the tool prints at the end (`SIP
    /// Device | User Agent`, `Extension | Authentication`, `Extension |
    /// Password`), without its header; empty when it found nothing.
    pub fn results(&self) -> Vec<Vec<String>> {
        result_rows(&self.output)
    }

    /// Whether the tool said it found nothing (its closing warning when
    /// the result table is empty).
    pub fn found_nothing(&self) -> bool {
        self.output
            .lines()
            .any(|l| l.trim_end().ends_with(":found nothing"))
    }

    /// The lines that contain `needle`.
    pub fn lines_with<'a>(&'a self, needle: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.output.lines().filter(move |l| l.contains(needle))
    }

    /// Whether some line contains `needle`.
    pub fn says(&self, needle: &str) -> bool {
        self.lines_with(needle).next().is_some()
    }

    /// The candidates `svcrack` tried, in order (its debug lines `trying
    /// <password>`).
    pub fn passwords_tried(&self) -> Vec<&str> {
        self.output
            .lines()
            .filter_map(|l| l.split_once(":trying ").map(|(_, p)| p))
            .collect()
    }

    /// Everything useful for a failure message.
    pub fn report(&self) -> String {
        format!(
            "`{}` exit code {:?}{} after {:.1}s (output in {})\n--- output (tail) ---\n{}",
            self.command_line,
            self.exit_code,
            if self.killed { ", killed" } else { "" },
            self.elapsed.as_secs_f64(),
            self.log.display(),
            crate::pbx::tail(&self.output, 60)
        )
    }
}

/// The data rows of a table drawn by SIPVicious' `pptable`:
///
/// ```text
/// +-----------------+------------+
/// | SIP Device      | User Agent |
/// +=================+============+
/// | 127.0.0.1:35771 | unknown    |
/// +-----------------+------------+
/// ```
fn result_rows(output: &str) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = output
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('|') && l.ends_with('|') && l.len() > 1)
        .map(|l| {
            l[1..l.len() - 1]
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect();
    if !rows.is_empty() {
        rows.remove(0); // the header
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_table_rows_are_read_without_the_header() {
        let output = "INFO:root:we have 1 devices\n\
            +-----------------+------------+\n\
            | SIP Device      | User Agent |\n\
            +=================+============+\n\
            | 127.0.0.1:35771 | unknown    |\n\
            +-----------------+------------+\n\
            INFO:root:Total time: 0:00:03.021257\n";
        assert_eq!(
            result_rows(output),
            vec![vec!["127.0.0.1:35771".to_owned(), "unknown".to_owned()]]
        );
        assert!(result_rows("WARNING:root:found nothing\n").is_empty());
    }
}
