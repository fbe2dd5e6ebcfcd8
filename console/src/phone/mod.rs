//! The console's web phone, without the page: SIP over WebSocket as a
//! sans-IO user agent ([`ua::Phone`]), its messages ([`message`]) and
//! digest answers ([`digest`]). The page (`pages::phone`) drives it with a
//! WebSocket, an `RTCPeerConnection` and the clock.

pub mod digest;
pub mod message;
pub mod ua;

#[cfg(test)]
mod tests;
