//! One served call: the socket, the media endpoint and the voicemail
//! session, and the work the session asks for.

use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgepbx_engine::Served;
use edgepbx_media::endpoint::{Endpoint, Event, tone};
use edgepbx_media::wav::{Pcm, read_wav};
use edgepbx_media::webrtc::WebRtcLeg;
use edgepbx_voicemail::{Clip, Config, Keep, Output, Reply, Session};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use super::Voicemail;
use crate::media::MediaEvent;

/// Largest datagram read.
const MAX_PACKET: usize = 2_048;

/// Nothing from the caller for this long ends the call.
const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest message read back for playing, seconds (a day).
const MAX_PLAYED_SECS: u32 = 86_400;

/// What reaches a served call from the engine.
#[derive(Debug)]
pub enum Input {
    /// The caller pressed a key (SIP INFO).
    Key(char),
    /// The caller receives at this address now, as its message from that
    /// one said.
    Announce(SocketAddr, IpAddr),
    /// The caller is a browser: its media comes through this leg.
    WebRtc(Box<WebRtcLeg>),
}

/// Where the endpoint believes a browser is: the leg stands in for it.
const BROWSER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 9);

/// Sends what a browser's leg has to send.
fn flush(leg: &mut WebRtcLeg, socket: &UdpSocket) {
    while let Some(datagram) = leg.poll_datagram() {
        let _ = socket.try_send_to(&datagram.bytes, datagram.to);
    }
}

/// A served call's state.
pub(super) struct Call {
    vm: Arc<Voicemail>,
    served: Served,
    endpoint: Endpoint,
    session: Session,
    beep: Arc<Pcm>,
}

impl Call {
    pub(super) fn new(vm: Arc<Voicemail>, served: Served) -> Call {
        let now = Instant::now();
        let mut endpoint = Endpoint::new(
            now,
            served.codec,
            served.telephone_event,
            rand::random(),
            rand::random(),
            rand::random(),
            MEDIA_TIMEOUT,
        );
        if let Some(party) = served.party {
            endpoint.handle_announcement(party, Some(served.signalling));
        }
        let c = &vm.config;
        let config = Config {
            max_message: Duration::from_secs(c.max_message_secs),
            max_greeting: Duration::from_secs(c.max_greeting_secs),
            silence: Duration::from_secs(c.silence_secs),
            ..Config::default()
        };
        let session = Session::new(config, served.service.clone());
        Call {
            vm,
            served,
            endpoint,
            session,
            beep: Arc::new(tone(1_000, 300, 8_000)),
        }
    }

    /// Runs until the session is over or the engine drops `inputs` (the
    /// caller hung up).
    pub(super) async fn run(
        mut self,
        rtp: StdUdpSocket,
        rtcp: StdUdpSocket,
        mut inputs: mpsc::UnboundedReceiver<Input>,
    ) {
        let (Ok(rtp), Ok(rtcp)) = (UdpSocket::from_std(rtp), UdpSocket::from_std(rtcp)) else {
            warn!(call = %self.served.uid, "voicemail sockets could not be registered");
            let _ = self.vm.events.send(MediaEvent::ServiceDone {
                call: self.served.call,
            });
            return;
        };
        info!(call = %self.served.uid, service = ?self.served.service, "voicemail answering");
        let mut buf = [0u8; MAX_PACKET];
        let mut rtcp_buf = [0u8; MAX_PACKET];
        let mut leg: Option<Box<WebRtcLeg>> = None;
        self.work().await;
        while !self.session.is_done() {
            let now = Instant::now();
            while let Some((to, packet)) = self.endpoint.poll_transmit(now) {
                match &mut leg {
                    Some(leg) => leg.send_rtp(now, packet),
                    None => {
                        let _ = rtp.try_send_to(packet, to);
                    }
                }
            }
            let mut deadline = self.endpoint.poll_timeout();
            if let Some(leg) = &mut leg {
                flush(leg, &rtp);
                deadline = deadline.min(leg.poll_timeout());
            }
            if let Some(at) = self.session.poll_timeout() {
                deadline = deadline.min(at);
            }
            tokio::select! {
                r = rtp.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r {
                        let now = Instant::now();
                        match &mut leg {
                            Some(leg) => {
                                leg.handle_datagram(now, from, &buf[..n]);
                                flush(leg, &rtp);
                                while let Some(packet) = leg.poll_rtp() {
                                    self.endpoint.handle_packet(now, BROWSER, &packet);
                                }
                            }
                            None => self.endpoint.handle_packet(now, from, &buf[..n]),
                        }
                    }
                }
                _ = rtcp.recv_from(&mut rtcp_buf) => {}
                input = inputs.recv() => match input {
                    Some(Input::Key(key)) => self.session.handle_key(Instant::now(), key),
                    // A browser's leg stands in for it, whatever its
                    // descriptions say.
                    Some(Input::Announce(address, signalling)) => if leg.is_none() {
                        self.endpoint.handle_announcement(address, Some(signalling));
                    },
                    Some(Input::WebRtc(browser)) => {
                        self.endpoint.handle_announcement(BROWSER, None);
                        leg = Some(browser);
                    }
                    None => {
                        // The caller hung up: keep what must be kept.
                        self.session.handle_hangup();
                        self.work().await;
                        return;
                    }
                },
                () = tokio::time::sleep_until(deadline.into()) => {
                    let now = Instant::now();
                    if let Some(leg) = &mut leg {
                        leg.handle_timeout(now);
                        flush(leg, &rtp);
                    }
                    self.endpoint.handle_timeout(now);
                    self.session.handle_timeout(now);
                }
            }
            self.work().await;
        }
        debug!(call = %self.served.uid, "voicemail session over");
    }

    /// Passes the endpoint's events to the session and carries out what
    /// the session asks, until neither has anything more.
    async fn work(&mut self) {
        loop {
            let now = Instant::now();
            if let Some(event) = self.endpoint.poll_event() {
                match event {
                    Event::Key(key) => self.session.handle_key(now, key),
                    Event::PlayDone => self.session.handle_play_done(now),
                    Event::RecordingEnded(_) => self.session.handle_recording_ended(now),
                    Event::Silent => {
                        let _ = self.vm.events.send(MediaEvent::Relay {
                            call: self.served.call,
                            event: edgepbx_media::relay::Event::Silent(
                                edgepbx_media::relay::Side::A,
                            ),
                        });
                    }
                }
                continue;
            }
            let Some(output) = self.session.poll_output() else {
                return;
            };
            self.carry_out(output).await;
        }
    }

    async fn carry_out(&mut self, output: Output) {
        let vm = self.vm.clone();
        let tenant = self.served.tenant.clone();
        match output {
            Output::Play(clips) => {
                let mut audio = Vec::with_capacity(clips.len());
                for clip in clips {
                    audio.push(self.clip(&clip).await);
                }
                self.endpoint.play(audio);
            }
            Output::StopPlaying => self.endpoint.stop_playing(),
            Output::Record { max, silence } => {
                self.endpoint.record(Instant::now(), max, silence);
            }
            Output::KeepRecording { mailbox, keep } => {
                let audio = self.endpoint.stop_recording();
                match keep {
                    Keep::Message => {
                        if vm.keep_message(&self.served, &mailbox, audio).await {
                            vm.changed(&tenant, &mailbox).await;
                        }
                    }
                    Keep::Greeting(greeting) => {
                        vm.keep_greeting(&tenant, &mailbox, greeting, audio).await;
                    }
                }
            }
            Output::DiscardRecording => {
                self.endpoint.stop_recording();
            }
            Output::LoadMailbox(mailbox) => {
                let loaded = vm.load(&tenant, &mailbox).await;
                self.session.handle_reply(Reply::Mailbox(loaded));
            }
            Output::CheckPin { mailbox, pin } => {
                let check = vm.check_pin(&tenant, &mailbox, pin).await;
                self.session.handle_reply(Reply::Pin(check));
            }
            Output::ListMessages(mailbox) => {
                let messages = vm.messages(&tenant, &mailbox).await;
                self.session.handle_reply(Reply::Messages(messages));
            }
            Output::MarkSaved { mailbox, id } => {
                if let Err(error) = vm
                    .store
                    .voicemail()
                    .set_saved(&tenant, &mailbox, &id, true)
                    .await
                {
                    warn!(%error, "cannot mark a voice message heard");
                }
                vm.changed(&tenant, &mailbox).await;
            }
            Output::Delete { mailbox, id } => vm.delete(&tenant, &mailbox, &id).await,
            Output::ChangePin { mailbox, pin } => vm.change_pin(&tenant, &mailbox, pin).await,
            Output::Transfer(number) => {
                let _ = self.vm.events.send(MediaEvent::Transfer {
                    call: self.served.call,
                    number,
                });
            }
            Output::HangUp => {
                let _ = self.vm.events.send(MediaEvent::ServiceDone {
                    call: self.served.call,
                });
            }
        }
    }

    /// The audio of a clip (silence when it cannot be read).
    async fn clip(&self, clip: &Clip) -> Arc<Pcm> {
        let vm = &self.vm;
        let tenant = &self.served.tenant;
        let file = match clip {
            Clip::Prompt(name) => return vm.prompts.get(&vm.data, tenant, name).await,
            Clip::Beep => return self.beep.clone(),
            Clip::Greeting(greeting) => {
                let mailbox = self.session_mailbox();
                vm.greeting_path(tenant, &mailbox, *greeting)
            }
            Clip::Message(id) => {
                let mailbox = self.session_mailbox();
                vm.message_path(tenant, &mailbox, id)
            }
        };
        match tokio::fs::read(&file).await {
            Ok(bytes) => read_wav(&bytes, MAX_PLAYED_SECS)
                .map(Arc::new)
                .unwrap_or_else(|error| {
                    warn!(%error, file = %file.display(), "cannot decode audio to play");
                    Arc::default()
                }),
            Err(error) => {
                warn!(%error, file = %file.display(), "cannot read audio to play");
                Arc::default()
            }
        }
    }

    fn session_mailbox(&self) -> String {
        self.session.mailbox().unwrap_or_default()
    }
}
