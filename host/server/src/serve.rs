//! `edgepbx serve`: opens the store, loads tenants, bindings and routing
//! policies into memory, binds the SIP transports, runs the SIP plane with
//! its call engine, and shuts down
//! gracefully on SIGINT/SIGTERM (stop reading, flush the write-behind queue,
//! close the store).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use edgepbx_media::ports::PortRange;
use edgepbx_policy::Policies;
use edgepbx_sip::parse::Limits;
use edgepbx_store::{BindingChange, NewExtension, Store, Transport};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use edgepbx_engine::config::ListeningPorts;
use edgepbx_engine::registrar::{Aor, Binding, Location};
use edgepbx_engine::tenants::TenantTable;
use edgepbx_engine::{Engine, Lines, Peer};

use crate::admin::Admin;
use crate::admin::credentials::{credentials_for, generate_password};
use crate::admin::policies::load_policies;
use crate::admin::tenants::load_tenants;
use crate::cli::{ServeArgs, StorageArgs};
use crate::commands::{open_store, print_registration_hint};
use crate::config::Config;
use crate::control;
use crate::events::EventBus;
use crate::kv::PersistentKv;
use crate::media::MediaPlane;
use crate::persist::Persist;
use crate::routing::Router;
use crate::sip::{self, Driver, FEATURE_KEY_QUEUE, FeatureKeyChange, Inputs, SystemRoutes};
use crate::transport::{self, Inbound, Outbound, TcpSettings};

/// Code and domain of the tenant `--demo` creates.
const DEMO_TENANT: (&str, &str) = ("DEMO", "demo.edgepbx.test");

/// The configuration `serve` runs with: the file (or the defaults), then
/// the flags. Read before the runtime starts, whose threads take their
/// priority from it.
pub fn configure(storage: &StorageArgs, args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = match &storage.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(data) = &storage.data {
        config.data = data.clone();
    }
    if let Some(db) = &storage.db {
        config.db = Some(db.clone());
    }
    if let Some(udp) = args.sip_udp {
        config.sip.udp = udp;
    }
    if let Some(tcp) = args.sip_tcp {
        config.sip.tcp = tcp;
    }
    if let Some(http) = args.http {
        config.http.listen = http;
    }
    if args.http_cert.is_some() {
        config.http.cert = args.http_cert.clone();
        config.http.key = args.http_key.clone();
    }
    config.validate()?;
    Ok(config)
}

/// Runs the server until a signal asks it to stop.
pub async fn run(storage: &StorageArgs, args: ServeArgs, config: Config) -> anyhow::Result<()> {
    // Opened on one of the main runtime's threads, so that the threads the
    // database engine starts for its storage work inherit their lower
    // priority (`sip.background_nice`); the SIP thread is started from here.
    let store = {
        let (storage, config) = (storage.clone(), config.clone());
        tokio::spawn(async move { open_store(&storage, &config).await })
            .await
            .context("opening the store")??
    };
    if args.demo {
        create_demo(&store).await?;
    }
    let tenants = Arc::new(load_tenants(&store).await?);
    let location = restore_bindings(&store, &config).await?;
    let policies = load_policies(&store, &config).await?;
    let server_key = store.server_key();

    // Bound here, so that a taken port fails the start with a clear error;
    // handed to the SIP thread's runtime below.
    let udp = bind_udp(config.sip.udp)
        .with_context(|| format!("binding SIP UDP on {}", config.sip.udp))?;
    let tcp = std::net::TcpListener::bind(config.sip.tcp)
        .with_context(|| format!("binding SIP TCP on {}", config.sip.tcp))?;
    udp.set_nonblocking(true)?;
    tcp.set_nonblocking(true)?;
    let tls = match (config.sip.tls, config.sip_tls_files()) {
        (Some(addr), Some((cert, key))) => {
            let acceptor =
                crate::api::tls::acceptor_by_name(cert, key, &config.sip.certificates, &[])
                    .context("the certificates for SIP over TLS")?;
            let listener = std::net::TcpListener::bind(addr)
                .with_context(|| format!("binding SIP TLS on {addr}"))?;
            listener.set_nonblocking(true)?;
            Some((listener, acceptor))
        }
        _ => None,
    };
    let (udp_addr, tcp_addr) = (udp.local_addr()?, tcp.local_addr()?);
    let tls_addr = match &tls {
        Some((listener, _)) => Some(listener.local_addr()?),
        None => None,
    };
    let http = crate::api::bind(&config.http)?;
    let http_addr = http.local_addr()?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // The write-behind task runs here, on the runtime that owns the store.
    let persist = Persist::spawn(store.clone(), &config.store, policies.clone());
    let events = EventBus::default();
    let lines = Arc::new(Lines::default());
    let (control_tx, control_rx) = mpsc::channel(64);
    let (feature_keys_tx, feature_keys_rx) = mpsc::channel(FEATURE_KEY_QUEUE);
    // What the media plane and voicemail tell the engine.
    let (media_tx, media_rx) = mpsc::unbounded_channel();
    // What the transports tell the SIP core; WebSockets arrive on the
    // HTTP listener, on this runtime.
    let (inbound_tx, inbound_rx) = mpsc::channel(8_192);
    // One count of stream connections for TCP, TLS and WebSocket.
    let connections = Arc::new(transport::ConnectionCount::new(
        config.sip.max_connections_per_ip,
        config.sip.max_connections,
    ));
    let sip_ws = transport::ws::WsTransport::new(
        inbound_tx.clone(),
        transport::ws::WsSettings {
            limits: sip_limits(&config),
            origins: config.http.sip_ws_origins.clone(),
            messages_per_sec: config.http.sip_ws_messages_per_sec,
            secure: config.http.cert.is_some(),
        },
        connections.clone(),
    );
    let voicemail = crate::voicemail::Voicemail::new(
        config.voicemail.clone(),
        store.clone(),
        config.data.clone(),
        tokio::runtime::Handle::current(),
        media_tx.clone(),
    );
    voicemail.announce_counts();
    let outbox_task = tokio::spawn(crate::voicemail::run_outbox(
        voicemail.clone(),
        shutdown_rx.clone(),
    ));
    let sip = SipPlane {
        voicemail: voicemail.clone(),
        media_events: (media_tx, media_rx),
        inbound: (inbound_tx, inbound_rx),
        connections,
        http_port: http_addr.port(),
        config: config.clone(),
        tenants: tenants.clone(),
        location,
        server_key,
        persist,
        policies: policies.clone(),
        kv: load_kv(&store, &tenants).await?,
        events: events.clone(),
        lines: lines.clone(),
        control: control_rx,
        feature_keys: feature_keys_tx,
        udp,
        tcp,
        tls,
    };
    let sip_shutdown = shutdown_rx.clone();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let sip_thread = std::thread::Builder::new()
        .name("sip".into())
        .spawn(move || sip.run(sip_shutdown, started_tx))
        .context("starting the SIP thread")?;
    // "Ready" means the SIP plane serves: wait for its runtimes and engine.
    if started_rx.await.is_err() {
        return match sip_thread.join() {
            Ok(Err(error)) => Err(error.context("starting the SIP plane")),
            _ => Err(anyhow::anyhow!("the SIP plane stopped while starting")),
        };
    }
    let admin = Admin {
        tenants: Arc::new(tokio::sync::Mutex::new(tenants.clone())),
        reloading: Arc::default(),
        store: store.clone(),
        core: control_tx,
        policies,
        events,
    };
    let api = Arc::new(crate::api::Api {
        admin: admin.clone(),
        lines,
        throttle: crate::api::auth::LoginThrottle::new(
            config.http.login_failures,
            Duration::from_secs(config.http.login_window_secs),
        ),
        secure_cookies: config.http.cert.is_some(),
        disk: crate::disk::DiskGuard::new(
            config.data.clone(),
            config.store.min_free_mib.saturating_mul(1 << 20),
        ),
        stopping: shutdown_rx.clone(),
        config: config.http.clone(),
        ring_timeout_secs: config.calls.ring_timeout_secs,
        imports: crate::api::imports::Jobs::new(Duration::from_secs(
            u64::from(config.retention.import_reports_mins) * 60,
        )),
        streams: Default::default(),
        provisioning: crate::api::provisioning::Provisioning::new(
            config.provisioning.clone(),
            udp_addr.port(),
            tls_addr.map(|a| a.port()),
        ),
        voicemail,
        sip_ws,
    });
    let http_shutdown = shutdown_rx.clone();
    let http_task = tokio::spawn(async move {
        if let Err(error) = crate::api::serve(http, api, http_shutdown).await {
            warn!(error = %format!("{error:#}"), "the HTTP listener stopped");
        }
    });
    let carriers_task = tokio::spawn(crate::carriers::follow(admin.clone(), shutdown_rx.clone()));
    let retention_task = tokio::spawn(crate::retention::run(
        store.clone(),
        config.retention.clone(),
        shutdown_rx.clone(),
    ));
    tokio::spawn(admin.clone().apply_feature_keys(feature_keys_rx));
    let control_task = match control::ControlSocket::bind(&config.data) {
        Ok(socket) => Some(tokio::spawn(control::serve(socket, admin, shutdown_rx))),
        Err(error) => {
            warn!(error = %format!("{error:#}"), "no control socket: administration needs the server stopped");
            None
        }
    };

    info!(%udp_addr, %tcp_addr, %http_addr, tenants = tenants.tenants().count(), "edgepbx listening");
    // The one line on stdout that scripts and tests wait for.
    let scheme = if config.http.cert.is_some() {
        "https"
    } else {
        "http"
    };
    let tls_field = tls_addr
        .map(|a| format!(" sip-tls={a}"))
        .unwrap_or_default();
    println!("edgepbx ready sip-udp={udp_addr} sip-tcp={tcp_addr}{tls_field} {scheme}={http_addr}");

    wait_for_signal().await;
    info!("shutting down");
    let _ = shutdown_tx.send(true);
    if let Some(control_task) = control_task {
        let _ = control_task.await;
    }
    let _ = http_task.await;
    let _ = carriers_task.await;
    let _ = retention_task.await;
    let _ = outbox_task.await;
    // The SIP thread ends when its transports and core have stopped and the
    // write-behind queue is flushed; wait for it off the async workers.
    match tokio::task::spawn_blocking(move || sip_thread.join()).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => warn!(error = %e, "the SIP plane stopped with an error"),
        Ok(Err(_)) | Err(_) => warn!("the SIP thread panicked"),
    }
    // The write-behind task has ended; this is the last handle.
    if let Err(e) = store.close().await {
        warn!(error = %e, "closing the store");
    }
    info!("stopped");
    Ok(())
}

/// The framing limits of every SIP transport.
fn sip_limits(config: &Config) -> Limits {
    Limits {
        max_message_bytes: config.sip.max_message_bytes,
        max_headers: config.sip.max_headers,
    }
}

/// Receive buffer asked for the SIP UDP socket. Bursts of REGISTERs (a
/// site's phones after a power cut) must wait in the kernel rather than be
/// dropped and retransmitted half a second later; the kernel caps it at
/// `net.core.rmem_max`.
const UDP_RECV_BUFFER_BYTES: usize = 4 << 20;

/// Binds the SIP UDP socket with a large receive buffer.
fn bind_udp(addr: std::net::SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(error) = socket.set_recv_buffer_size(UDP_RECV_BUFFER_BYTES) {
        warn!(%error, "cannot enlarge the SIP UDP receive buffer");
    }
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Everything the SIP plane needs: it runs on a runtime of its own (one
/// worker per core), so that nothing else in the process (above all the
/// database engine, whose commits can hold a worker for milliseconds) ever
/// delays a SIP message. It talks to the rest through channels.
struct SipPlane {
    /// Calls edgepbx answers itself.
    voicemail: Arc<crate::voicemail::Voicemail>,
    /// What the media plane and voicemail tell the engine.
    media_events: (
        mpsc::UnboundedSender<crate::media::MediaEvent>,
        mpsc::UnboundedReceiver<crate::media::MediaEvent>,
    ),
    /// What the transports tell the core (WebSockets' side is held by the
    /// HTTP listener).
    inbound: (mpsc::Sender<Inbound>, mpsc::Receiver<Inbound>),
    /// The stream connections of every SIP transport, counted.
    connections: Arc<transport::ConnectionCount>,
    /// The HTTP listener's port, where WebSockets arrive.
    http_port: u16,
    config: Config,
    tenants: Arc<TenantTable>,
    location: Location,
    server_key: [u8; 32],
    persist: Persist,
    policies: Arc<Policies>,
    /// Every tenant's policy key-value entries.
    kv: Vec<(String, std::collections::BTreeMap<String, String>)>,
    events: EventBus,
    lines: Arc<Lines>,
    control: mpsc::Receiver<sip::Control>,
    /// Where feature keys' settings changes go to be written.
    feature_keys: mpsc::Sender<FeatureKeyChange>,
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    /// The SIP over TLS listener and its certificate, when configured.
    tls: Option<(std::net::TcpListener, tokio_rustls::TlsAcceptor)>,
}

impl SipPlane {
    /// Runs the transports and the SIP plane until `shutdown`; `started`
    /// hears once the engine's driver runs.
    fn run(
        self,
        shutdown: watch::Receiver<bool>,
        started: tokio::sync::oneshot::Sender<()>,
    ) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("sip")
            .enable_all()
            .build()
            .context("building the SIP runtime")?;
        // Media relay sessions run apart from signalling, on a thread of
        // their own so that relaying never delays a SIP message. A
        // single-threaded runtime: a packet wakes its session on the
        // thread that polled the socket, with no hand-over between workers
        // (a fifth fewer context switches than a one-worker pool).
        let media_runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the media runtime")?;
        let media_handle = media_runtime.handle().clone();
        let (stop_media, media_stopped) = tokio::sync::oneshot::channel::<()>();
        let media_thread = std::thread::Builder::new()
            .name("media".into())
            .spawn(move || {
                media_runtime.block_on(async {
                    let _ = media_stopped.await;
                });
                // Sessions of calls still up when the server stopped end
                // with it.
                media_runtime.shutdown_background();
            })
            .context("starting the media thread")?;
        let result = runtime.block_on(async move {
            let udp = Arc::new(UdpSocket::from_std(self.udp)?);
            let tcp = TcpListener::from_std(self.tcp)?;
            let (udp_addr, tcp_addr) = (udp.local_addr()?, tcp.local_addr()?);
            let tls = match self.tls {
                Some((listener, acceptor)) => Some((TcpListener::from_std(listener)?, acceptor)),
                None => None,
            };
            let tls_port = match &tls {
                Some((listener, _)) => Some(listener.local_addr()?.port()),
                None => None,
            };
            let (inbound_tx, inbound_rx) = self.inbound;
            let limits = sip_limits(&self.config);
            let tcp_settings = TcpSettings::new(limits.clone());
            let connections = self.connections.clone();
            let (media_tx, media_rx) = self.media_events;
            let m = &self.config.media;
            let ports = PortRange::new(m.port_min, m.port_max)?;
            let media = MediaPlane::new(
                ports,
                m.bind,
                self.config.calls.silence(),
                media_tx,
                media_handle,
                self.voicemail,
            );
            let kv = PersistentKv::new(POLICY_KV_KEYS, self.persist.kv_writer());
            for (tenant, entries) in self.kv {
                kv.load(&tenant, entries);
            }
            let (decided_tx, decided_rx) = mpsc::unbounded_channel();
            let router = Router::new(
                self.policies,
                Arc::new(kv),
                self.lines.clone(),
                self.config.calls.ring_timeout_secs,
                decided_tx,
            );
            // One certificate for every browser leg of this run.
            let identity = edgepbx_media::webrtc::Identity::generate()
                .context("generating the WebRTC DTLS certificate")?;
            let ports = ListeningPorts {
                udp: udp_addr.port(),
                tcp: tcp_addr.port(),
                tls: tls_port,
                http: self.http_port,
            };
            let engine = Engine::new(
                Instant::now(),
                self.config.engine(ports, self.server_key),
                rand::random(),
                Box::new(SystemRoutes::default()),
                self.tenants,
                self.location,
                self.lines,
                identity,
            );
            let driver = Driver {
                engine,
                outbound: Outbound::new(udp.clone()),
                persist: self.persist,
                router,
                media,
                events: self.events,
                feature_keys: self.feature_keys,
            };
            let inputs = Inputs {
                udp: transport::UdpReceiver::new(udp, limits),
                inbound: inbound_rx,
                media: media_rx,
                control: self.control,
                decisions: decided_rx,
                shutdown: shutdown.clone(),
            };
            let core_task = sip::spawn(driver, inputs);
            let _ = started.send(());
            let tls_task = tls.map(|(listener, acceptor)| {
                tokio::spawn(transport::run_stream(
                    listener,
                    Some(acceptor),
                    tcp_settings.clone(),
                    connections.clone(),
                    inbound_tx.clone(),
                    shutdown.clone(),
                ))
            });
            let tcp_task = tokio::spawn(transport::run_stream(
                tcp,
                None,
                tcp_settings,
                connections,
                inbound_tx,
                shutdown,
            ));
            let _ = tcp_task.await;
            if let Some(task) = tls_task {
                let _ = task.await;
            }
            let _ = core_task.await;
            Ok(())
        });
        let _ = stop_media.send(());
        let _ = media_thread.join();
        result
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Keys a tenant's policy may keep in its key-value store.
const POLICY_KV_KEYS: usize = 1_000;

/// Every tenant's policy key-value entries.
async fn load_kv(
    store: &Store,
    tenants: &TenantTable,
) -> anyhow::Result<Vec<(String, std::collections::BTreeMap<String, String>)>> {
    let mut all = Vec::new();
    for tenant in tenants.tenants() {
        all.push((
            tenant.code.clone(),
            store.policies().kv(&tenant.code).await?,
        ));
    }
    Ok(all)
}

/// Puts back the bindings that had not expired when the server stopped.
async fn restore_bindings(store: &Store, config: &Config) -> anyhow::Result<Location> {
    let mut location = Location::new(config.registrar.clone());
    let (now, wall) = (Instant::now(), SystemTime::now());
    let mut restored = 0usize;
    let mut browsers = Vec::new();
    for b in store.bindings().load_all().await? {
        let Ok(left) = b.expires_at.duration_since(wall) else {
            continue; // expired while the server was down
        };
        // A WebSocket client is reachable only over its socket, which died
        // with the previous run: it is offline until it connects again.
        if matches!(b.transport, Transport::Ws | Transport::Wss) {
            browsers.push(BindingChange::Remove {
                tenant: b.tenant,
                extension: b.extension,
                contact: b.contact,
            });
            continue;
        }
        // A TCP connection does not survive a restart; the device's next
        // REGISTER opens a new one, and until then requests go over UDP.
        let source = Peer::Udp(b.source);
        location.restore(
            Aor {
                tenant: b.tenant,
                extension: b.extension,
            },
            Binding {
                contact: b.contact,
                q: b.q,
                instance: b.instance_id,
                reg_id: b.reg_id,
                call_id: b.call_id,
                cseq: b.cseq,
                expires_at: b.expires_at,
                stored_expires_at: b.expires_at,
                deadline: now + left,
                source,
                user_agent: b.user_agent,
            },
        );
        restored += 1;
    }
    let dropped = browsers.len();
    store.bindings().apply(browsers).await?;
    info!(
        restored,
        dropped, "bindings restored; WebSocket clients' dropped"
    );
    Ok(location)
}

/// `--demo`: on first start, tenant DEMO with extensions 100–109.
async fn create_demo(store: &Store) -> anyhow::Result<()> {
    let (code, domain) = DEMO_TENANT;
    if store.tenants().get(code).await?.is_some() {
        println!(
            "demo tenant {code} exists; `edgepbx ext passwd {code} <NUMBER>` and `edgepbx user passwd admin@{domain}` set new passwords"
        );
        return Ok(());
    }
    store.tenants().add(code, domain).await?;
    println!("created demo tenant {code} (SIP domain {domain}) with extensions 100-109:");
    for n in 100..110 {
        let number = n.to_string();
        let password = generate_password();
        store
            .extensions()
            .add(
                code,
                NewExtension {
                    number: number.clone(),
                    name: format!("Demo {number}"),
                    aliases: Vec::new(),
                    credentials: credentials_for(store.sealer(), code, domain, &number, &password),
                },
            )
            .await?;
        let mut hint = String::new();
        print_registration_hint(code, domain, &number, Some(&password), &mut hint)?;
        print!("{hint}");
    }
    let password = generate_password();
    let email = format!("admin@{domain}");
    crate::admin::accounts::create_user(
        store,
        &email,
        edgepbx_store::Role::TenantAdmin,
        Some(code),
        None,
        &password,
    )
    .await?;
    println!("console user {email} (tenant admin of {code}), password: {password}");
    Ok(())
}
