//! The SIP plane's driver: one task around the sans-IO [`Engine`]. It
//! feeds the engine what arrives (datagrams, stream messages, timers, the
//! policies' decisions, relay events, the control socket's requests) with
//! the current time, then drains it: sends what it asks to send, has the
//! policy decide, binds and runs media relays, queues records for the
//! store and publishes events. Then it sleeps until the engine's next
//! timeout or the next input.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use edgepbx_engine::registrar::{Aor, Change};
use edgepbx_engine::{ActiveCall, DeviceInfo, Engine, LocalRoutes, Output, TenantTable, Transmit};
use edgepbx_store::Mac;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{Instrument, info, info_span, warn};

use crate::events::EventBus;
use crate::media::{MediaEvent, MediaPlane};
use crate::persist::Persist;
use crate::routing::{Made, Router};
use crate::transport::{Inbound, Outbound, UdpReceiver};

/// What the rest of the server asks of the SIP plane.
#[derive(Debug)]
pub enum Control {
    /// Configuration changed in the store: use this table for new
    /// requests (calls under way keep the tenant they started with).
    Tenants(Arc<TenantTable>),
    /// The calls in progress of a tenant.
    Calls {
        /// Tenant code.
        tenant: String,
        /// Where to send them.
        reply: oneshot::Sender<Vec<ActiveCall>>,
    },
    /// The devices registered for an extension.
    Devices {
        /// Tenant code.
        tenant: String,
        /// Extension number.
        extension: String,
        /// Where to send them.
        reply: oneshot::Sender<Vec<DeviceInfo>>,
    },
    /// Tell a provisioned phone to fetch its configuration again.
    Resync {
        /// Tenant code.
        tenant: String,
        /// The extension it registers as.
        extension: String,
        /// Its MAC address.
        mac: Mac,
        /// The `Event` header its vendor reads.
        event: &'static str,
        /// How many of its registrations were told.
        reply: oneshot::Sender<usize>,
    },
}

/// The channels the driver listens on besides the transports.
pub struct Inputs {
    /// Datagrams of the SIP UDP socket.
    pub udp: UdpReceiver,
    /// Messages and connection changes from the TCP transport.
    pub inbound: mpsc::Receiver<Inbound>,
    /// Relay events of calls' media.
    pub media: mpsc::UnboundedReceiver<MediaEvent>,
    /// Requests of the control socket.
    pub control: mpsc::Receiver<Control>,
    /// Decisions made off this task.
    pub decisions: mpsc::UnboundedReceiver<Made>,
    /// Becomes true on shutdown.
    pub shutdown: watch::Receiver<bool>,
}

/// How long a stopping server goes on handling the responses to the BYEs
/// and CANCELs that ended its calls (retransmitting lost ones), at most.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Messages handled in a row before timers get a look.
const INBOUND_BATCH: usize = 64;

/// The engine and everything its outputs go to.
pub struct Driver {
    /// The state machine.
    pub engine: Engine,
    /// Sends bytes to peers.
    pub outbound: Outbound,
    /// The write-behind queue.
    pub persist: Persist,
    /// Asks the tenants' policies.
    pub router: Router,
    /// Binds and runs media relays.
    pub media: MediaPlane,
    /// Where events are published.
    pub events: EventBus,
    /// Where feature keys' settings changes go to be written.
    pub feature_keys: mpsc::Sender<FeatureKeyChange>,
}

/// How many feature key changes may wait to be written; past that, a
/// change is dropped with a warning (phones press keys, they do not
/// stream them).
pub const FEATURE_KEY_QUEUE: usize = 256;

/// A setting a phone's feature key changes, for the store.
#[derive(Debug)]
pub struct FeatureKeyChange {
    /// Tenant code.
    pub tenant: String,
    /// Extension number.
    pub extension: String,
    /// The change.
    pub key: edgepbx_store::FeatureKey,
}

impl Driver {
    /// Runs until shutdown, then flushes pending writes.
    ///
    /// Timers are checked between batches of at most [`INBOUND_BATCH`]
    /// messages, so a flood cannot starve retransmissions.
    pub async fn run(mut self, inputs: Inputs) {
        let Inputs {
            mut udp,
            mut inbound,
            media: mut media_events,
            mut control,
            mut decisions,
            mut shutdown,
        } = inputs;
        self.drain();
        // Once stopping: when the grace for the calls' BYEs ends.
        let mut grace: Option<Instant> = None;
        loop {
            let deadline = self.engine.poll_timeout();
            let deadline = match (deadline, grace) {
                (Some(at), Some(end)) => Some(at.min(end)),
                (at, end) => at.or(end),
            }
            .map(tokio::time::Instant::from_std);
            tokio::select! {
                item = inbound.recv() => match item {
                    Some(item) => {
                        self.inbound(item);
                        // Under load more are waiting: take them without
                        // going round the select (and its timer) each time.
                        for _ in 0..INBOUND_BATCH {
                            let Ok(item) = inbound.try_recv() else { break };
                            self.drain();
                            self.inbound(item);
                        }
                    }
                    None => break,
                },
                ready = udp.readable() => if ready.is_ok() {
                    for _ in 0..INBOUND_BATCH {
                        let Some(item) = udp.try_next() else { break };
                        self.inbound(item);
                        self.drain();
                    }
                },
                _ = sleep_until(deadline) => {
                    self.engine.handle_timeout(Instant::now(), SystemTime::now());
                }
                Some(event) = media_events.recv() => {
                    let (now, wall) = (Instant::now(), SystemTime::now());
                    match event {
                        MediaEvent::Relay { call, event } => {
                            self.engine.handle_media_event(now, wall, call, event);
                        }
                        MediaEvent::ServiceDone { call } => {
                            self.engine.handle_service_done(now, wall, call);
                        }
                        MediaEvent::Transfer { call, number } => {
                            self.engine.handle_service_transfer(now, wall, call, number);
                        }
                        MediaEvent::Mailbox { aor, new, old } => {
                            self.engine.handle_mailbox(now, wall, aor, new, old);
                        }
                    }
                }
                Some(request) = control.recv() => self.control(request),
                Some(made) = decisions.recv() => self.decided(made),
                _ = shutdown.changed(), if grace.is_none() => {
                    // Every call ends now, with its BYEs and its record;
                    // responses and retransmissions are handled a little
                    // longer.
                    let now = Instant::now();
                    self.engine.handle_shutdown(now, SystemTime::now());
                    grace = Some(now + SHUTDOWN_GRACE);
                }
            }
            self.drain();
            if let Some(end) = grace
                && (self.engine.is_settled() || Instant::now() >= end)
            {
                break;
            }
        }
        let (bindings, calls, subscriptions) = self.engine.counts();
        info!(bindings, calls, subscriptions, "sip plane stopped");
        // The router holds the policies' key-value writer: it goes first,
        // so that the write-behind queue can close.
        let Driver {
            persist,
            router,
            engine,
            ..
        } = self;
        drop((router, engine));
        persist.close().await;
    }

    fn inbound(&mut self, item: Inbound) {
        let (now, wall) = (Instant::now(), SystemTime::now());
        match item {
            Inbound::Connected { conn, sender } => {
                self.outbound.connected(conn, sender);
                self.engine.handle_connected(conn);
            }
            Inbound::Closed { conn } => {
                self.outbound.closed(conn);
                self.engine.handle_closed(now, wall, conn);
            }
            Inbound::Malformed { peer, bytes, error } => {
                self.engine.handle_malformed(now, peer, &bytes, &error)
            }
            Inbound::Message { peer, message } => {
                self.engine.handle_message(now, wall, peer, message)
            }
        }
    }

    fn control(&mut self, request: Control) {
        match request {
            Control::Tenants(tenants) => {
                self.engine
                    .handle_tenants(Instant::now(), SystemTime::now(), tenants);
            }
            Control::Calls { tenant, reply } => {
                let _ = reply.send(self.engine.active_calls(&tenant, SystemTime::now()));
            }
            Control::Devices {
                tenant,
                extension,
                reply,
            } => {
                let _ = reply.send(self.engine.devices(&Aor { tenant, extension }));
            }
            Control::Resync {
                tenant,
                extension,
                mac,
                event,
                reply,
            } => {
                let aor = Aor { tenant, extension };
                let sent = self.engine.handle_resync(Instant::now(), &aor, &mac, event);
                let _ = reply.send(sent);
            }
        }
    }

    /// A decision for the engine; a faulty module it took out of service
    /// is recorded.
    fn decided(&mut self, made: Made) {
        if let Some(version) = made.deactivated {
            self.persist
                .record_policy_deactivation(&made.tenant, version);
        }
        self.engine
            .handle_decision(Instant::now(), SystemTime::now(), made.decided);
    }

    /// Carries out everything the engine asks until it asks nothing more.
    fn drain(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Transmit(Transmit {
                    to,
                    message,
                    transaction,
                }) => {
                    let sent = self.outbound.send(&to, message.to_bytes());
                    if let (Err(_), Some(key)) = (sent, transaction) {
                        self.engine
                            .handle_send_error(Instant::now(), SystemTime::now(), key);
                    }
                }
                Output::Decide(request) => {
                    if let Some(made) = self.router.decide(*request) {
                        self.decided(made);
                    }
                }
                Output::Media(command) => {
                    for slot in self.media.execute(command) {
                        self.engine.handle_media_slot(slot);
                    }
                }
                Output::Binding { at, change } => {
                    // A registration keeps its stream connection open.
                    if let Change::Added(_, binding) | Change::Refreshed { binding, .. } = &change
                        && let Some(conn) = binding.source.conn()
                    {
                        self.outbound.keep_open(conn, binding.deadline);
                    }
                    self.persist.record(at, change);
                }
                Output::CallRecord(record) => self.persist.record_call(*record),
                Output::Event(event) => self.events.publish(event),
                Output::FeatureKey {
                    tenant,
                    extension,
                    key,
                } => {
                    let change = FeatureKeyChange {
                        tenant,
                        extension,
                        key,
                    };
                    if let Err(error) = self.feature_keys.try_send(change) {
                        warn!(%error, "feature key change dropped");
                    }
                }
            }
        }
    }
}

/// Which local address reaches a peer: what the system's routing table
/// says, asked once per remote address.
#[derive(Debug, Default)]
pub struct SystemRoutes {
    cache: HashMap<IpAddr, IpAddr>,
}

impl LocalRoutes for SystemRoutes {
    fn local_ip_for(&mut self, remote: SocketAddr) -> IpAddr {
        *self.cache.entry(remote.ip()).or_insert_with(|| {
            let bind: SocketAddr = if remote.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            // Connecting a UDP socket sends nothing; it only picks a route.
            StdUdpSocket::bind(bind)
                .and_then(|s| s.connect(remote).and_then(|_| s.local_addr()))
                .map(|a| a.ip())
                .unwrap_or(bind.ip())
        })
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs the driver in the span of the SIP plane.
pub fn spawn(driver: Driver, inputs: Inputs) -> tokio::task::JoinHandle<()> {
    tokio::spawn(driver.run(inputs).instrument(info_span!("sip")))
}
