//! One browser's media: a str0m session (full ICE, DTLS-SRTP, G.711 μ-law)
//! on a UDP socket of its own, sending a 20 ms packet every 20 ms once
//! connected and counting the packets that come back.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;

/// Packets of every browser, sent and received since the start.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Browsers whose ICE and DTLS are up.
    pub connected: AtomicU64,
    /// Browsers that gave up (no answer, ICE or DTLS failed).
    pub failed: AtomicU64,
}

/// The packet interval of 20 ms G.711.
const PTIME: Duration = Duration::from_millis(20);

/// A browser before its call is answered.
pub struct Browser {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mid: Mid,
    pending: Option<SdpPendingOffer>,
    /// The sources of RTP taken so far.
    sources: Vec<u32>,
}

impl Browser {
    /// A browser on a new port of `ip`, and its offer.
    pub async fn offer(ip: std::net::IpAddr) -> std::io::Result<(Browser, String)> {
        let socket = UdpSocket::bind((ip, 0)).await?;
        let local = socket.local_addr()?;
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_pcmu(true, false)
            .set_stats_interval(None)
            .build(Instant::now());
        let candidate = Candidate::host(local, "udp").map_err(std::io::Error::other)?;
        rtc.add_local_candidate(candidate);
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| std::io::Error::other("no offer"))?;
        let browser = Browser {
            rtc,
            socket,
            local,
            mid,
            pending: Some(pending),
            sources: Vec::new(),
        };
        Ok((browser, offer.to_sdp_string()))
    }

    /// Takes the answer, then streams until `until`: false if the
    /// session never connected.
    pub async fn talk(mut self, answer: &str, until: Instant, counters: &Counters) -> bool {
        let answer = match SdpAnswer::from_sdp_string(answer) {
            Ok(answer) => answer,
            Err(e) => {
                eprintln!("a bad answer: {e}");
                return false;
            }
        };
        let Some(pending) = self.pending.take() else {
            return false;
        };
        if let Err(e) = self.rtc.sdp_api().accept_answer(pending, answer) {
            eprintln!("answer refused: {e}");
            return false;
        }
        let mut connected = false;
        let mut next_packet = Instant::now();
        let (mut seq, mut ts) = (1u64, 0u32);
        let mut buf = vec![0u8; 2000];
        let give_up = Instant::now() + Duration::from_secs(10);
        loop {
            let wake = match self.drain(counters, &mut connected).await {
                Some(wake) => wake,
                None => return connected,
            };
            let now = Instant::now();
            if now >= until || (!connected && now >= give_up) {
                return connected;
            }
            if connected && now >= next_packet {
                self.send_packet(now, seq, ts);
                counters.sent.fetch_add(1, Ordering::Relaxed);
                seq += 1;
                ts = ts.wrapping_add(160);
                next_packet += PTIME;
                continue;
            }
            let deadline = if connected {
                wake.min(next_packet)
            } else {
                wake
            };
            let deadline = deadline.min(until).max(now);
            tokio::select! {
                got = self.socket.recv_from(&mut buf) => {
                    let Ok((n, from)) = got else { return connected };
                    if connected {
                        self.expect(&buf[..n]);
                    }
                    let Ok(receive) = Receive::new(Protocol::Udp, from, self.local, &buf[..n]) else {
                        continue;
                    };
                    let _ = self.rtc.handle_input(Input::Receive(Instant::now(), receive));
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
                }
            }
        }
    }

    /// Takes RTP from a source the answer did not announce, as browsers
    /// do for their one audio stream (rtpengine passes on the echo's
    /// description, which has no `a=ssrc`).
    fn expect(&mut self, datagram: &[u8]) {
        let is_rtp = datagram.len() >= 12
            && datagram[0] >> 6 == 2
            && !(72..=79).contains(&(datagram[1] & 0x7f));
        if !is_rtp {
            return;
        }
        let ssrc = u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]);
        if !self.sources.contains(&ssrc) {
            self.sources.push(ssrc);
            self.rtc
                .direct_api()
                .expect_stream_rx(ssrc.into(), None, self.mid, None);
        }
    }

    /// One packet of μ-law silence.
    fn send_packet(&mut self, now: Instant, seq: u64, ts: u32) {
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_tx_by_mid(self.mid, None) else {
            return;
        };
        let write = RtpWrite::new(Pt::from(0), seq.into(), ts, now, vec![0xff; 160]);
        stream.write_rtp(write);
    }

    /// Sends what str0m has to send and takes its events; the time it
    /// wants to be woken, or `None` once the session is over.
    async fn drain(&mut self, counters: &Counters, connected: &mut bool) -> Option<Instant> {
        loop {
            match self.rtc.poll_output().ok()? {
                Output::Timeout(at) => return Some(at),
                Output::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
                }
                Output::Event(Event::Connected) => {
                    *connected = true;
                    counters.connected.fetch_add(1, Ordering::Relaxed);
                }
                Output::Event(Event::RtpPacket(packet)) => {
                    if packet.header.payload_type == Pt::from(0) {
                        counters.received.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Output::Event(Event::IceConnectionStateChange(
                    IceConnectionState::Disconnected,
                )) => {
                    return None;
                }
                Output::Event(_) => {}
            }
        }
    }
}
