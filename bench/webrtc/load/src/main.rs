//! The load of bench/webrtc/run.sh: CALLS browsers call at RATE per
//! second, each streaming 20 ms G.711 over DTLS-SRTP to an RTP echo
//! through the server under test (edgepbx, signalled over SIP WebSockets,
//! or rtpengine, driven over ng). Once every call is up and SETTLE
//! seconds have passed, the server's and this process's CPU time and the
//! packets sent and echoed back are read over WINDOW seconds; then every
//! call hangs up. Prints one line of `key=value` figures.
//!
//! Usage: edgepbx-bench-webrtc --server-pid PID --echo-port PORT
//!   (--ws URL --user U --password P --domain D --callee C | --ng ADDR)
//!   [--calls 100] [--rate 25] [--settle 5] [--window 10] [--hz 100]

mod browser;
mod ng;
mod sip;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use browser::{Browser, Counters};

/// How the calls are set up.
#[derive(Clone)]
enum Server {
    Edgepbx { url: String, account: sip::Account },
    Rtpengine { ng: SocketAddr },
}

struct Args {
    server: Server,
    server_pid: u32,
    echo_port: u16,
    calls: u64,
    rate: f64,
    settle: u64,
    window: u64,
    hz: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut map = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(key) = args.next() {
        let key = key
            .strip_prefix("--")
            .ok_or(format!("unexpected {key}"))?
            .to_string();
        let value = args.next().ok_or(format!("--{key} needs a value"))?;
        map.insert(key, value);
    }
    let get = |k: &str| map.get(k).cloned().ok_or(format!("--{k} is required"));
    let num = |k: &str, default: &str| -> Result<f64, String> {
        map.get(k)
            .map_or(default, String::as_str)
            .parse()
            .map_err(|_| format!("--{k} must be a number"))
    };
    let server = if let Some(ng) = map.get("ng") {
        Server::Rtpengine {
            ng: ng.parse().map_err(|_| "--ng must be an address")?,
        }
    } else {
        Server::Edgepbx {
            url: get("ws")?,
            account: sip::Account {
                user: get("user")?,
                password: get("password")?,
                domain: get("domain")?,
                callee: get("callee")?,
            },
        }
    };
    Ok(Args {
        server,
        server_pid: get("server-pid")?.parse().map_err(|_| "--server-pid")?,
        echo_port: get("echo-port")?.parse().map_err(|_| "--echo-port")?,
        calls: num("calls", "100")? as u64,
        rate: num("rate", "25")?,
        settle: num("settle", "5")? as u64,
        window: num("window", "10")? as u64,
        hz: num("hz", "100")?,
    })
}

/// CPU seconds (user + system) of process `pid` so far.
fn cpu_ticks(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    field(11) + field(12)
}

/// Sends every datagram on `socket` back where it came from, as a phone
/// would: RTP with a source (SSRC) of its own.
fn echo(socket: UdpSocket) {
    let mut buf = vec![0u8; 2048];
    while let Ok((n, from)) = socket.recv_from(&mut buf) {
        if n >= 12 && buf[0] >> 6 == 2 && !(200..=207).contains(&buf[1]) {
            buf[8..12].iter_mut().for_each(|b| *b ^= 0x5a);
        }
        let _ = socket.send_to(&buf[..n], from);
    }
}

/// Failures of call set-up and hang-up.
#[derive(Default)]
struct Failures {
    setup: AtomicU64,
    hangup: AtomicU64,
}

async fn one_call(
    server: Server,
    echo: SocketAddr,
    until: Instant,
    counters: Arc<Counters>,
    failures: Arc<Failures>,
) {
    let fail = |why: String| {
        eprintln!("call failed: {why}");
        failures.setup.fetch_add(1, Ordering::Relaxed);
        counters.failed.fetch_add(1, Ordering::Relaxed);
    };
    let (browser, offer) = match Browser::offer(echo.ip()).await {
        Ok(pair) => pair,
        Err(e) => return fail(e.to_string()),
    };
    match server {
        Server::Edgepbx { url, account } => {
            let mut call = match sip::Call::connect(&url, account).await {
                Ok(call) => call,
                Err(e) => return fail(e),
            };
            let answer = match call.invite(&offer).await {
                Ok(answer) => answer,
                Err(e) => return fail(e),
            };
            let connected = tokio::select! {
                connected = browser.talk(&answer, until, &counters) => connected,
                () = call.serve() => false,
            };
            if !connected {
                counters.failed.fetch_add(1, Ordering::Relaxed);
            }
            if let Err(e) = call.bye().await {
                eprintln!("hang-up failed: {e}");
                failures.hangup.fetch_add(1, Ordering::Relaxed);
            }
        }
        Server::Rtpengine { ng } => {
            let mut control = match ng::Ng::new(ng).await {
                Ok(control) => control,
                Err(e) => return fail(e.to_string()),
            };
            let (call_id, from_tag) = (format!("bench-{}", counters_id()), "browser".to_string());
            if let Err(e) = control.offer(&call_id, &from_tag, &offer).await {
                return fail(e);
            }
            let answer = match control
                .answer(&call_id, &from_tag, "echo", &ng::echo_answer(echo))
                .await
            {
                Ok(answer) => answer,
                Err(e) => return fail(e),
            };
            if !browser.talk(&bundled(&answer), until, &counters).await {
                counters.failed.fetch_add(1, Ordering::Relaxed);
            }
            if let Err(e) = control.delete(&call_id, &from_tag).await {
                eprintln!("hang-up failed: {e}");
                failures.hangup.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// rtpengine 10.5 answers without `a=group:BUNDLE`, which browsers take
/// and str0m refuses: the group of the answer's one stream, added.
fn bundled(answer: &str) -> String {
    if answer.contains("a=group:BUNDLE") {
        return answer.to_string();
    }
    let Some(mid) = answer.lines().find_map(|l| l.strip_prefix("a=mid:")) else {
        return answer.to_string();
    };
    answer.replacen(
        "t=0 0\r\n",
        &format!("t=0 0\r\na=group:BUNDLE {}\r\n", mid.trim()),
        1,
    )
}

/// A number unique in this process.
fn counters_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("edgepbx-bench-webrtc: {e}");
            std::process::exit(2);
        }
    };
    let echo_socket =
        UdpSocket::bind(("127.0.0.1", args.echo_port)).expect("the echo port is free");
    let echo_addr = echo_socket.local_addr().expect("a local address");
    std::thread::spawn(move || echo(echo_socket));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run(args, echo_addr));
}

async fn run(args: Args, echo: SocketAddr) {
    let counters = Arc::new(Counters::default());
    let failures = Arc::new(Failures::default());
    let start = Instant::now();
    let ramp = Duration::from_secs_f64(args.calls as f64 / args.rate);
    let window_start = start + ramp + Duration::from_secs(args.settle);
    let window_end = window_start + Duration::from_secs(args.window);
    let until = window_end + Duration::from_secs(1);
    let mut tasks = Vec::new();
    for i in 0..args.calls {
        let at = start + Duration::from_secs_f64(i as f64 / args.rate);
        tokio::time::sleep_until(at.into()).await;
        let task = one_call(
            args.server.clone(),
            echo,
            until,
            counters.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(task));
    }
    tokio::time::sleep_until(window_start.into()).await;
    let pid = args.server_pid.to_string();
    let (server_before, own_before) = (cpu_ticks(&pid), cpu_ticks("self"));
    let (sent_before, received_before) = (
        counters.sent.load(Ordering::Relaxed),
        counters.received.load(Ordering::Relaxed),
    );
    let up = counters.connected.load(Ordering::Relaxed);
    tokio::time::sleep_until(window_end.into()).await;
    let (server_after, own_after) = (cpu_ticks(&pid), cpu_ticks("self"));
    let sent = counters.sent.load(Ordering::Relaxed) - sent_before;
    let received = counters.received.load(Ordering::Relaxed) - received_before;
    for task in tasks {
        let _ = task.await;
    }
    let percent = |before: f64, after: f64| (after - before) / args.hz * 100.0 / args.window as f64;
    let loss = if sent == 0 {
        100.0
    } else {
        100.0 * (1.0 - received as f64 / sent as f64)
    };
    println!(
        "calls={} connected={} failed={} setup_failed={} hangup_failed={} server_cpu={:.1} load_cpu={:.1} sent={} received={} loss={:.3}",
        args.calls,
        up,
        counters.failed.load(Ordering::Relaxed),
        failures.setup.load(Ordering::Relaxed),
        failures.hangup.load(Ordering::Relaxed),
        percent(server_before, server_after),
        percent(own_before, own_after),
        sent,
        received,
        loss.max(0.0),
    );
}
