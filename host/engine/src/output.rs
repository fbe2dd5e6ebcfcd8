//! What the engine asks its driver to do.

use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

pub use edgepbx_model::CallRecord;

use edgepbx_media::endpoint::Codec;
use edgepbx_media::relay::Side;
use edgepbx_sip::Message;
use edgepbx_sip::transaction::TransactionKey;
pub use edgepbx_voicemail::Service;

use crate::events::Event;
use crate::registrar::Change;
use crate::routing::DecisionRequest;

/// One thing for the driver to do, drained with
/// [`Engine::poll_output`](crate::Engine::poll_output).
#[derive(Debug)]
pub enum Output {
    /// Send a message.
    Transmit(Transmit),
    /// Ask the tenant's routing policy; the answer comes back through
    /// [`Engine::handle_decision`](crate::Engine::handle_decision), at once
    /// or later from another thread.
    Decide(Box<DecisionRequest>),
    /// Set up, steer or end a call's media relay.
    Media(MediaCommand),
    /// Store a binding change (written behind; `at` is when it happened).
    Binding {
        /// When it happened.
        at: SystemTime,
        /// What changed.
        change: Change,
    },
    /// Store the record of a call that ended.
    CallRecord(Box<CallRecord>),
    /// Change one setting of an extension, as its phone's feature key
    /// asked, then hand the engine the tenant reloaded
    /// ([`Engine::handle_tenants`](crate::Engine::handle_tenants)), whether
    /// the write succeeded or not: the phone is then shown the settings
    /// as they are. (A change the driver cannot queue is shown right at
    /// the phone's next refresh.)
    FeatureKey {
        /// Tenant code.
        tenant: String,
        /// Extension number.
        extension: String,
        /// The change.
        key: edgepbx_model::FeatureKey,
    },
    /// Publish an event.
    Event(Event),
}

/// A message to send.
#[derive(Debug)]
pub struct Transmit {
    /// Where to.
    pub to: crate::Peer,
    /// What.
    pub message: Message,
    /// The transaction that sends it: if sending fails, tell the engine
    /// through [`Engine::handle_send_error`](crate::Engine::handle_send_error).
    /// `None` for what no transaction retransmits (ACKs of 2xx, stateless
    /// answers).
    pub transaction: Option<TransactionKey>,
}

/// Two pairs of media ports (RTP, and RTCP on the next port) that the
/// driver has bound and keeps ready for a call: one facing the caller
/// (A), one facing the callee (B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MediaSlot {
    /// The RTP port facing the caller.
    pub a_port: u16,
    /// The RTP port facing the callee.
    pub b_port: u16,
}

/// What the driver does with media relays.
#[derive(Debug)]
pub enum MediaCommand {
    /// Bind `count` more slots and hand each to
    /// [`Engine::handle_media_slot`](crate::Engine::handle_media_slot)
    /// (`None` when one cannot be bound). Ports are bound before they are
    /// offered, so an offer never names a port another program holds.
    Reserve {
        /// How many slots.
        count: usize,
    },
    /// Relay call `call`'s media on `slot`.
    Start {
        /// The engine's id of the call.
        call: u64,
        /// The ports.
        slot: MediaSlot,
    },
    /// Side `side` of call `call` said it receives RTP at `address`.
    Announce {
        /// The call.
        call: u64,
        /// Which party.
        side: Side,
        /// Its RTP address.
        address: SocketAddr,
        /// Where its signalling comes from (behind NAT, its NAT's address,
        /// which may then latch the relay).
        signalling: IpAddr,
    },
    /// Answer call `call`'s media with edgepbx's own endpoint (voicemail)
    /// on the A side of `slot`, and run its service; the service's end
    /// comes back as
    /// [`Engine::handle_service_done`](crate::Engine::handle_service_done).
    Serve(Box<Served>),
    /// The party of served call `call` pressed `key` (SIP INFO).
    Key {
        /// The call.
        call: u64,
        /// `0`–`9`, `*`, `#`, `A`–`D`.
        key: char,
    },
    /// Side `side` of call `call` is a browser: its port carries this
    /// WebRTC leg (ICE, DTLS-SRTP) instead of plain RTP.
    WebRtc {
        /// The call.
        call: u64,
        /// Which party.
        side: Side,
        /// The leg, negotiated.
        leg: Box<edgepbx_media::webrtc::WebRtcLeg>,
    },
    /// Press `key` for `millis` towards side `side` of call `call`, as RFC
    /// 4733 events of payload type `payload_type` in the media it
    /// receives (a key that came as SIP INFO, for a party that negotiated
    /// events).
    Press {
        /// The call.
        call: u64,
        /// Which party hears it.
        side: Side,
        /// `0`–`9`, `*`, `#`, `A`–`D`.
        key: char,
        /// How long.
        millis: u32,
        /// The telephone-event payload type of the call.
        payload_type: u8,
    },
    /// Call `call` no longer needs its relay or its endpoint: stop it and
    /// free its ports (the driver logs what it relayed).
    Stop {
        /// The call.
        call: u64,
        /// Its call id as records name it.
        uid: String,
    },
}

/// A call edgepbx answers itself, for a service (voicemail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The engine's id of the call.
    pub call: u64,
    /// Its call id as records name it.
    pub uid: String,
    /// The tenant's code.
    pub tenant: String,
    /// Who calls: an extension number or an external number.
    pub caller: String,
    /// The caller's display name, when known.
    pub caller_name: Option<String>,
    /// The ports; the service uses the side facing the caller.
    pub slot: MediaSlot,
    /// The codec the answer chose.
    pub codec: Codec,
    /// The payload type of telephone events, when the caller offered them.
    pub telephone_event: Option<u8>,
    /// Where the caller receives RTP, when its offer said.
    pub party: Option<SocketAddr>,
    /// Where the caller's signalling comes from.
    pub signalling: IpAddr,
    /// What the call is for.
    pub service: Service,
}
