//! Browser phones: JsSIP in pages of headless Chromium with fake
//! microphones, driven through `tests/browser/phones.mjs` (JSON commands in,
//! JSON events out). Each phone is a page of its own, served from the
//! origin a test names.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::pbx::{Extension, RunningPbx};
use crate::{manifest_dir, require_program};

/// A Chromium with browser phones in it.
pub struct Browsers {
    child: Child,
    stdin: ChildStdin,
    events: mpsc::Receiver<Value>,
    /// Every event seen so far, for failure messages.
    seen: Vec<Value>,
}

impl Browsers {
    /// Starts Chromium; fails (never skips) when node, Chromium or the npm
    /// packages are missing.
    pub fn start() -> Browsers {
        let (child, stdin, events) = node("phones.mjs", &["jssip", "esbuild"], &[], |line| {
            serde_json::from_str(&line).unwrap_or(json!({"event": "text", "line": line}))
        });
        let mut browsers = Browsers {
            child,
            stdin,
            events,
            seen: Vec::new(),
        };
        browsers.wait(None, "ready", Duration::from_secs(30));
        browsers
    }

    /// Sends one command.
    pub fn send(&mut self, command: Value) {
        writeln!(self.stdin, "{command}").expect("the browser driver takes a command");
    }

    /// Waits for `event` of phone `name` (any phone for `None`); an
    /// `error` event of that phone fails the test.
    pub fn wait(&mut self, name: Option<&str>, event: &str, timeout: Duration) -> Value {
        self.try_wait(name, event, timeout).unwrap_or_else(|| {
            panic!(
                "no {event:?} from {name:?} within {timeout:?}; events so far:\n{}",
                self.history()
            )
        })
    }

    /// Like [`Browsers::wait`], `None` when the time runs out.
    pub fn try_wait(
        &mut self,
        name: Option<&str>,
        event: &str,
        timeout: Duration,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        // Events already seen and not yet waited for count.
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(value) = self.events.recv_timeout(left) else {
                return None;
            };
            self.seen.push(value.clone());
            let mine = name.is_none_or(|n| value["name"] == n);
            if value["event"] == "fatal" {
                panic!("the browser driver failed:\n{}", self.history());
            }
            if mine && value["event"] == "error" {
                panic!("phone {name:?} reported an error:\n{}", self.history());
            }
            if mine && value["event"] == event {
                return Some(value);
            }
        }
    }

    /// Every event seen so far, one per line.
    pub fn history(&self) -> String {
        self.seen
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Opens phone `name` in a page of `origin`.
    pub fn open(&mut self, name: &str, origin: &str) {
        self.send(json!({"cmd": "open", "name": name, "origin": origin}));
        self.wait(Some(name), "opened", Duration::from_secs(30));
    }

    /// Opens phone `name` in a page served by `pbx` over HTTP and
    /// registers it as `ext` over the WebSocket; returns the `registered`
    /// event.
    pub fn register(&mut self, name: &str, pbx: &RunningPbx, ext: &Extension) -> Value {
        self.register_at(name, &format!("http://{}", pbx.http()), &ws_url(pbx), ext)
    }

    /// Opens phone `name` in a page of `origin` and registers it as `ext`
    /// over the WebSocket at `ws`.
    pub fn register_at(&mut self, name: &str, origin: &str, ws: &str, ext: &Extension) -> Value {
        self.open(name, origin);
        self.start_ua_at(name, ws, ext, &ext.password);
        self.wait(Some(name), "registered", Duration::from_secs(20))
    }

    /// Starts phone `name`'s JsSIP user agent as `ext` with `password`.
    pub fn start_ua(&mut self, name: &str, pbx: &RunningPbx, ext: &Extension, password: &str) {
        self.start_ua_at(name, &ws_url(pbx), ext, password);
    }

    fn start_ua_at(&mut self, name: &str, ws: &str, ext: &Extension, password: &str) {
        self.send(json!({
            "cmd": "ua",
            "name": name,
            "ws": ws,
            "uri": format!("sip:{}@{}", ext.number, ext.domain),
            "password": password,
        }));
    }

    /// A command to phone `name` with extra fields.
    pub fn command(&mut self, name: &str, cmd: &str, fields: Value) {
        let mut command = json!({"cmd": cmd, "name": name});
        if let (Some(c), Some(f)) = (command.as_object_mut(), fields.as_object()) {
            c.extend(f.clone());
        }
        self.send(command);
    }
}

impl Drop for Browsers {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"cmd": "exit"}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SIP WebSocket of `pbx` (default path).
pub fn ws_url(pbx: &RunningPbx) -> String {
    format!("ws://{}/ws", pbx.http())
}

/// Runs `tests/browser/<script>` with `env`, its stdout's lines read by
/// `read` on a thread of their own; fails (never skips) when node,
/// Chromium or one of the npm `packages` is missing.
fn node<T: Send + 'static>(
    script: &str,
    packages: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
    read: fn(String) -> T,
) -> (Child, ChildStdin, mpsc::Receiver<T>) {
    require_program("node");
    require_program("chromium");
    let dir = manifest_dir().join("browser");
    for package in packages {
        assert!(
            dir.join("node_modules").join(package).is_dir(),
            "{package} is missing: run ./scripts/test.sh (it runs `npm ci` in tests/browser)"
        );
    }
    let mut child = Command::new("node")
        .arg(dir.join(script))
        .current_dir(&dir)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node starts");
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(read(line)).is_err() {
                return;
            }
        }
    });
    (child, stdin, rx)
}

/// A Node script driving the console in Chromium that reports its
/// progress one line per step (`STEP <name> [detail]`, or `FAIL <why>`)
/// and may wait for lines on its stdin.
pub struct Steps {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Steps {
    /// Runs `tests/browser/<script>` with `env`; fails (never skips) when
    /// node, Chromium or playwright-core is missing.
    pub fn start(script: &str, env: &[(&str, &std::ffi::OsStr)]) -> Steps {
        let (child, stdin, lines) = node(script, &["playwright-core"], env, |line| {
            println!("browser: {line}");
            line
        });
        Steps {
            child,
            stdin,
            lines,
        }
    }

    /// Waits (90 s at most) for step `name`; returns its detail.
    pub fn next(&self, name: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(90))
                .unwrap_or_else(|_| panic!("the browser never reached `{name}`"));
            assert!(!line.starts_with("FAIL"), "browser: {line}");
            if let Some(rest) = line.strip_prefix(&format!("STEP {name}")) {
                return rest.trim().to_owned();
            }
        }
    }

    /// Tells the script to go on.
    pub fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("the browser reads stdin");
    }

    /// Waits for step `done` and the script's successful exit.
    pub fn finish(mut self) {
        self.next("done");
        let status = self.child.wait().expect("node exits");
        assert!(status.success(), "the browser script failed: {status}");
    }
}
