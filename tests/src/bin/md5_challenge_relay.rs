//! `md5-challenge-relay [--listen ADDR] --server ADDR [--latency-log FILE]`: runs
//! [`edgepbx_e2e::relay::Md5ChallengeRelay`] until killed, for tools that
//! cannot answer SHA-256 digest challenges (bench/register/run.sh puts it
//! between SIPp 3.6 and each registrar). Prints `relay ready ADDR` once
//! listening.

use std::net::SocketAddr;
use std::path::PathBuf;

use edgepbx_e2e::relay::Md5ChallengeRelay;

fn main() {
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut server: Option<SocketAddr> = None;
    let mut latency_log: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match (arg.as_str(), value.parse::<SocketAddr>()) {
            ("--listen", Ok(addr)) => listen = addr,
            ("--server", Ok(addr)) => server = Some(addr),
            ("--latency-log", _) if !value.is_empty() => latency_log = Some(PathBuf::from(value)),
            _ => usage(),
        }
    }
    let Some(server) = server else { usage() };
    let relay = match Md5ChallengeRelay::start_on(listen, server, latency_log.as_deref()) {
        Ok(relay) => relay,
        Err(e) => {
            eprintln!("cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    println!("relay ready {}", relay.addr());
    loop {
        std::thread::park();
    }
}

fn usage() -> ! {
    eprintln!("usage: md5-challenge-relay [--listen ADDR] --server ADDR [--latency-log FILE]");
    std::process::exit(2);
}
