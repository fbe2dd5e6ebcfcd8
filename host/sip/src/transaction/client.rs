//! Client transactions (RFC 3261 §17.1): INVITE (§17.1.1) and non-INVITE
//! (§17.1.2).

use std::time::{Duration, Instant};

use crate::message::{Message, Request, Response};

use super::matching::{ClientMatch, ack_for};
use super::timers::{Armed, Timer, Timers, deadline};
use super::{ClientKey, Next, Output, TransactionEvent, TransactionKey, Transmit};

/// The state of a client transaction (RFC 3261 §17.1, RFC 6026 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientState {
    /// INVITE sent, no response yet.
    Calling,
    /// Non-INVITE sent, no response yet.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived (for INVITE: a non-2xx one).
    Completed,
    /// INVITE: a 2xx arrived (RFC 6026).
    Accepted,
}

// ---------------------------------------------------------------------------
// Client transactions (§17.1)

/// An INVITE (§17.1.1) or non-INVITE (§17.1.2) client transaction.
#[derive(Debug)]
pub(super) struct ClientTransaction<D> {
    pub(super) key: ClientKey,
    pub(super) invite: bool,
    pub(super) state: ClientState,
    pub(super) destination: D,
    pub(super) reliable: bool,
    /// The request, kept for retransmission and for building the ACK.
    pub(super) request: Request,
    /// The CSeq number, for the ACK.
    pub(super) seq: u32,
    /// The ACK of a non-2xx final response, re-sent for every
    /// retransmission of that response.
    pub(super) ack: Option<Request>,
    /// Current interval of timer A or E.
    pub(super) interval: Duration,
    pub(super) matcher: ClientMatch,
    pub(super) armed: Armed,
}

impl<D: Clone> ClientTransaction<D> {
    pub(super) fn tkey(&self) -> TransactionKey {
        self.key.into()
    }

    pub(super) fn send(&self, out: &mut Output<D>, message: Message) {
        out.transmits.push_back(Transmit {
            destination: self.destination.clone(),
            message,
            transaction: self.tkey(),
        });
    }

    /// Sends the request and arms the initial timers.
    pub(super) fn start(&mut self, now: Instant, timers: &Timers, out: &mut Output<D>) {
        self.send(out, Message::Request(self.request.clone()));
        let (retransmit, timeout) = if self.invite {
            (Timer::A, Timer::B)
        } else {
            (Timer::E, Timer::F)
        };
        if !self.reliable {
            self.armed
                .arm(&mut out.deadlines, retransmit, deadline(now, self.interval));
        }
        self.armed.arm(
            &mut out.deadlines,
            timeout,
            deadline(now, timers.transaction_timeout()),
        );
    }

    pub(super) fn deliver(&self, out: &mut Output<D>, response: Response) {
        out.events
            .push_back(TransactionEvent::Response(self.key, response));
    }

    pub(super) fn on_response(
        &mut self,
        now: Instant,
        response: Response,
        timers: &Timers,
        out: &mut Output<D>,
    ) -> Next {
        let status = response.status;
        match (self.invite, self.state) {
            (true, ClientState::Calling | ClientState::Proceeding) => {
                self.armed.disarm(&mut out.deadlines, Timer::A);
                self.armed.disarm(&mut out.deadlines, Timer::B);
                match status {
                    100..=199 => {
                        self.state = ClientState::Proceeding;
                        self.deliver(out, response);
                        Next::Stay
                    }
                    200..=299 => {
                        self.state = ClientState::Accepted;
                        self.deliver(out, response);
                        self.armed.arm(
                            &mut out.deadlines,
                            Timer::M,
                            deadline(now, timers.transaction_timeout()),
                        );
                        Next::Stay
                    }
                    _ => {
                        self.state = ClientState::Completed;
                        let ack = ack_for(&self.request, self.seq, &response);
                        self.send(out, Message::Request(ack.clone()));
                        self.ack = Some(ack);
                        self.deliver(out, response);
                        let after = timers.timer_d(self.reliable);
                        self.armed.linger(&mut out.deadlines, now, Timer::D, after)
                    }
                }
            }
            (true, ClientState::Completed) => {
                // A retransmission of the final response: the ACK was lost.
                if status >= 300
                    && let Some(ack) = &self.ack
                {
                    self.send(out, Message::Request(ack.clone()));
                }
                Next::Stay
            }
            (true, ClientState::Accepted) => {
                // RFC 6026 §8.4: 2xx responses (retransmitted or from other
                // forks) go up so the TU acknowledges them; others are
                // absorbed.
                if (200..=299).contains(&status) {
                    self.deliver(out, response);
                }
                Next::Stay
            }
            (false, ClientState::Trying | ClientState::Proceeding) => {
                if status < 200 {
                    self.state = ClientState::Proceeding;
                    self.deliver(out, response);
                    Next::Stay
                } else {
                    self.armed.disarm(&mut out.deadlines, Timer::E);
                    self.armed.disarm(&mut out.deadlines, Timer::F);
                    self.state = ClientState::Completed;
                    self.deliver(out, response);
                    let after = timers.t4_or_zero(self.reliable);
                    self.armed.linger(&mut out.deadlines, now, Timer::K, after)
                }
            }
            // Non-INVITE Completed absorbs retransmissions; the remaining
            // pairs are states the other kind never enters.
            _ => Next::Stay,
        }
    }

    pub(super) fn on_timer(
        &mut self,
        now: Instant,
        timer: Timer,
        timers: &Timers,
        out: &mut Output<D>,
    ) -> Next {
        match (timer, self.state) {
            (Timer::A, ClientState::Calling) => {
                self.send(out, Message::Request(self.request.clone()));
                // Timer A doubles without a cap until timer B ends it.
                self.interval = self.interval.saturating_mul(2);
                self.armed
                    .arm(&mut out.deadlines, Timer::A, deadline(now, self.interval));
                Next::Stay
            }
            (Timer::E, ClientState::Trying | ClientState::Proceeding) => {
                self.send(out, Message::Request(self.request.clone()));
                self.interval = if self.state == ClientState::Trying {
                    self.interval.saturating_mul(2).min(timers.cap())
                } else {
                    timers.cap()
                };
                self.armed
                    .arm(&mut out.deadlines, Timer::E, deadline(now, self.interval));
                Next::Stay
            }
            (Timer::B, ClientState::Calling)
            | (Timer::F, ClientState::Trying | ClientState::Proceeding) => {
                out.events.push_back(TransactionEvent::Timeout(self.tkey()));
                Next::Terminate
            }
            (Timer::D | Timer::K, ClientState::Completed) | (Timer::M, ClientState::Accepted) => {
                Next::Terminate
            }
            // Timers are disarmed on every state change; nothing else can
            // fire.
            _ => Next::Stay,
        }
    }
}
