//! Where a message came from and where its answers go.

use std::net::SocketAddr;

/// A flow (RFC 5626): a UDP source address or a stream connection, so
/// that responses and keepalives reach devices behind NAT the way their
/// requests came. A value only: the driver owns the sockets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A UDP source address.
    Udp(SocketAddr),
    /// A stream connection, by id, with its remote address.
    Stream {
        /// Connection id, unique for the life of the process.
        conn: u64,
        /// Remote address of the connection.
        addr: SocketAddr,
        /// What the stream carries SIP over.
        kind: StreamKind,
    },
}

/// What a stream connection carries SIP over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Plain TCP (RFC 3261 §18).
    Tcp,
    /// TLS over TCP (RFC 3261 §26.2, RFC 5630).
    Tls,
    /// WebSocket on the HTTP listener (RFC 7118).
    Ws,
    /// WebSocket over TLS on the HTTPS listener (RFC 7118).
    Wss,
}

impl StreamKind {
    /// The transport name as in a Via header.
    pub fn via_name(self) -> &'static str {
        match self {
            StreamKind::Tcp => "TCP",
            StreamKind::Tls => "TLS",
            StreamKind::Ws => "WS",
            StreamKind::Wss => "WSS",
        }
    }

    /// The transport name as stored, shown and written in URIs'
    /// `transport` parameter.
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Tcp => "tcp",
            StreamKind::Tls => "tls",
            StreamKind::Ws => "ws",
            StreamKind::Wss => "wss",
        }
    }
}

impl Peer {
    /// The remote address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Peer::Udp(addr) | Peer::Stream { addr, .. } => *addr,
        }
    }

    /// The stream connection it is, if it is one.
    pub fn conn(&self) -> Option<u64> {
        match self {
            Peer::Udp(_) => None,
            Peer::Stream { conn, .. } => Some(*conn),
        }
    }

    /// Whether the transport is reliable (no retransmissions needed).
    pub fn reliable(&self) -> bool {
        matches!(self, Peer::Stream { .. })
    }

    /// The transport name as in a Via header.
    pub fn transport(&self) -> &'static str {
        match self {
            Peer::Udp(_) => "UDP",
            Peer::Stream { kind, .. } => kind.via_name(),
        }
    }

    /// The transport name as stored, shown and written in URIs'
    /// `transport` parameter: `udp`, `tcp`, `tls`, `ws` or `wss`.
    pub fn transport_name(&self) -> &'static str {
        match self {
            Peer::Udp(_) => "udp",
            Peer::Stream { kind, .. } => kind.name(),
        }
    }
}
