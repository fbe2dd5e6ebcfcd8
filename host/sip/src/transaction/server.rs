//! Server transactions (RFC 3261 §17.2): INVITE (§17.2.1) and non-INVITE
//! (§17.2.2).

use std::time::{Duration, Instant};

use crate::message::{Message, Response};

use super::matching::{ServerMatch, header_tag};
use super::timers::{Armed, Timer, Timers, deadline};
use super::{
    Next, Output, ServerKey, ServerState, TransactionError, TransactionEvent, TransactionKey,
    Transmit,
};

// ---------------------------------------------------------------------------
// Server transactions (§17.2)

/// An INVITE (§17.2.1) or non-INVITE (§17.2.2) server transaction.
#[derive(Debug)]
pub(super) struct ServerTransaction<D> {
    pub(super) key: ServerKey,
    pub(super) invite: bool,
    pub(super) state: ServerState,
    pub(super) source: D,
    pub(super) reliable: bool,
    pub(super) matcher: ServerMatch,
    /// The To tag of the final response, against which an RFC 2543 ACK is
    /// matched.
    pub(super) response_to_tag: Option<String>,
    /// The last response sent, re-sent on request retransmissions and by
    /// timer G.
    pub(super) last_response: Option<Response>,
    /// The automatic 100 Trying, until it is sent or the TU answers.
    pub(super) trying: Option<Response>,
    /// Current interval of timer G.
    pub(super) interval: Duration,
    pub(super) armed: Armed,
}

/// What an ACK did to a server INVITE transaction.
pub(super) enum AckOutcome {
    /// It acknowledged the non-2xx final response.
    Absorbed(Next),
    /// It is not for this transaction's state machine; the TU gets it.
    PassUp,
}

impl<D: Clone> ServerTransaction<D> {
    pub(super) fn tkey(&self) -> TransactionKey {
        self.key.into()
    }

    pub(super) fn send(&self, out: &mut Output<D>, response: Response) {
        out.transmits.push_back(Transmit {
            destination: self.source.clone(),
            message: Message::Response(response),
            transaction: self.tkey(),
        });
    }

    /// The request arrived again: re-send the last provisional or final
    /// response, if any (§17.2.1, §17.2.2).
    pub(super) fn on_retransmission(&self, out: &mut Output<D>) {
        if matches!(self.state, ServerState::Proceeding | ServerState::Completed)
            && let Some(response) = &self.last_response
        {
            self.send(out, response.clone());
        }
    }

    pub(super) fn on_ack(
        &mut self,
        now: Instant,
        timers: &Timers,
        out: &mut Output<D>,
    ) -> AckOutcome {
        match self.state {
            ServerState::Completed => {
                self.armed.disarm(&mut out.deadlines, Timer::G);
                self.armed.disarm(&mut out.deadlines, Timer::H);
                self.state = ServerState::Confirmed;
                let after = timers.t4_or_zero(self.reliable);
                AckOutcome::Absorbed(self.armed.linger(&mut out.deadlines, now, Timer::I, after))
            }
            ServerState::Confirmed => AckOutcome::Absorbed(Next::Stay),
            // In Accepted the ACK is the 2xx's, which the TU handles (RFC
            // 6026 §7.1); in Proceeding it acknowledges nothing.
            _ => AckOutcome::PassUp,
        }
    }

    pub(super) fn on_respond(
        &mut self,
        now: Instant,
        response: Response,
        timers: &Timers,
        out: &mut Output<D>,
    ) -> Result<Next, TransactionError> {
        let status = response.status;
        let key = self.key;
        let refuse = |state| TransactionError::ResponseNotAllowed { key, status, state };
        match (self.invite, self.state) {
            (true, ServerState::Proceeding) => {
                self.trying = None;
                self.armed.disarm(&mut out.deadlines, Timer::Trying);
                self.send(out, response.clone());
                match status {
                    100..=199 => {
                        self.last_response = Some(response);
                        Ok(Next::Stay)
                    }
                    200..=299 => {
                        self.state = ServerState::Accepted;
                        self.last_response = None;
                        self.armed.arm(
                            &mut out.deadlines,
                            Timer::L,
                            deadline(now, timers.transaction_timeout()),
                        );
                        Ok(Next::Stay)
                    }
                    _ => {
                        self.state = ServerState::Completed;
                        self.response_to_tag = header_tag(&response.headers, "To");
                        self.last_response = Some(response);
                        if !self.reliable {
                            self.interval = timers.first_interval();
                            self.armed.arm(
                                &mut out.deadlines,
                                Timer::G,
                                deadline(now, self.interval),
                            );
                        }
                        self.armed.arm(
                            &mut out.deadlines,
                            Timer::H,
                            deadline(now, timers.transaction_timeout()),
                        );
                        Ok(Next::Stay)
                    }
                }
            }
            (true, ServerState::Accepted) if (200..=299).contains(&status) => {
                // The TU retransmits its 2xx (§13.3.1.4) or sends another.
                self.send(out, response);
                Ok(Next::Stay)
            }
            (false, ServerState::Trying | ServerState::Proceeding) => {
                self.send(out, response.clone());
                if status < 200 {
                    self.state = ServerState::Proceeding;
                    self.last_response = Some(response);
                    Ok(Next::Stay)
                } else {
                    self.state = ServerState::Completed;
                    self.last_response = Some(response);
                    let after = timers.timer_j(self.reliable);
                    Ok(self.armed.linger(&mut out.deadlines, now, Timer::J, after))
                }
            }
            (_, state) => Err(refuse(state)),
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
            (Timer::Trying, ServerState::Proceeding) => {
                if self.last_response.is_none()
                    && let Some(trying) = self.trying.take()
                {
                    self.send(out, trying.clone());
                    self.last_response = Some(trying);
                }
                Next::Stay
            }
            (Timer::G, ServerState::Completed) => {
                if let Some(response) = &self.last_response {
                    self.send(out, response.clone());
                }
                self.interval = self.interval.saturating_mul(2).min(timers.cap());
                self.armed
                    .arm(&mut out.deadlines, Timer::G, deadline(now, self.interval));
                Next::Stay
            }
            (Timer::H, ServerState::Completed) => {
                out.events.push_back(TransactionEvent::Timeout(self.tkey()));
                Next::Terminate
            }
            (Timer::I, ServerState::Confirmed)
            | (Timer::J, ServerState::Completed)
            | (Timer::L, ServerState::Accepted) => Next::Terminate,
            // Timers are disarmed on every state change; nothing else can
            // fire.
            _ => Next::Stay,
        }
    }
}
