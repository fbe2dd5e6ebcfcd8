//! Where a message came from and where its answers go.

use std::net::SocketAddr;

/// A flow (RFC 5626): a UDP source address or a stream connection, so
/// that responses and keepalives reach devices behind NAT the way their
/// requests came. A value only: the driver owns the sockets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A UDP source address.
    Udp(SocketAddr),
    /// A TCP connection, by id, with its remote address.
    Tcp {
        /// Connection id, unique for the life of the process.
        conn: u64,
        /// Remote address of the connection.
        addr: SocketAddr,
    },
}

impl Peer {
    /// The remote address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Peer::Udp(addr) | Peer::Tcp { addr, .. } => *addr,
        }
    }

    /// Whether the transport is reliable (no retransmissions needed).
    pub fn reliable(&self) -> bool {
        matches!(self, Peer::Tcp { .. })
    }

    /// The transport name as in a Via header.
    pub fn transport(&self) -> &'static str {
        match self {
            Peer::Udp(_) => "UDP",
            Peer::Tcp { .. } => "TCP",
        }
    }

    /// The transport name as stored and shown: `udp` or `tcp`.
    pub fn transport_name(&self) -> &'static str {
        match self {
            Peer::Udp(_) => "udp",
            Peer::Tcp { .. } => "tcp",
        }
    }
}
