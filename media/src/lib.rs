//! Sans-IO media for edgepbx.
//!
//! Like `edgepbx-sip`, nothing here opens a socket, spawns a task or reads a
//! clock; the server drives it. Module map:
//! - [`anchor`]: rewriting a description so media flows through edgepbx's
//!   ports, with the codecs the relay carries.
//! - [`answer`]: answering an offer as the far end of the media
//!   (voicemail).
//! - [`dtmf`]: key presses from RFC 4733 telephone events and SIP INFO.
//! - [`endpoint`]: edgepbx as the far end of a call's media: playing,
//!   recording, hearing keys.
//! - [`g711`]: ITU-T G.711 μ-law and A-law, between 16-bit linear PCM and
//!   one byte per sample (what phones and the relay speak).
//! - [`ports`]: the media port range, RTP/RTCP pairs handed out
//!   round-robin.
//! - [`relay`]: the media relay of one call: two legs, symmetric RTP with
//!   latching, silence detection.
//! - [`rtp`]: RTP and RTCP headers (RFC 3550) as a relay reads them, and
//!   RTP/RTCP on one port (RFC 5761).
//! - [`sdp`]: session descriptions (RFC 8866): parsing within limits, the
//!   views anchoring and codec negotiation read, rewriting, serialization.
//! - [`webrtc`]: a browser's leg terminated with str0m (ICE-lite,
//!   DTLS-SRTP), carrying G.711 to and from the other leg.
//! - [`wav`]: WAV files of any common kind read into 8 kHz mono PCM (the
//!   audio edgepbx stores and plays), and written back.

pub mod anchor;
pub mod answer;
pub mod dtmf;
pub mod endpoint;
pub mod g711;
pub mod latch;
pub mod ports;
pub mod relay;
pub mod rtp;
pub mod sdp;
pub mod wav;
pub mod webrtc;
