//! Command-line interface: `serve` and the administration commands. An
//! administration command is carried out by the running server when there
//! is one (see `control`), else on the data directory directly.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// edgepbx: a multi-tenant PBX in one binary.
#[derive(Debug, Parser)]
#[command(name = "edgepbx", version, about)]
pub struct Cli {
    /// Where the data lives.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command that opens the store.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Data directory of the embedded database [default: ./data]
    #[arg(long, global = true, env = "EDGEPBX_DATA")]
    pub data: Option<PathBuf>,
    /// A remote SurrealDB instead of the embedded one, e.g. ws://db:8000
    #[arg(long, global = true, env = "EDGEPBX_DB")]
    pub db: Option<String>,
    /// TOML configuration file (unknown keys are rejected); the
    /// administration commands read its store settings
    #[arg(long, global = true, env = "EDGEPBX_CONFIG")]
    pub config: Option<PathBuf>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage extensions.
    #[command(subcommand)]
    Ext(ExtCommand),
    /// Manage desk phones that provision themselves.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Manage ring groups and virtual extensions.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Manage SIP trunks to carriers.
    #[command(subcommand)]
    Trunk(TrunkCommand),
    /// Check, try and manage tenants' routing policies (WebAssembly).
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// A tenant's calls in progress (from the running server), or its
    /// latest call records with --recent.
    Calls(CallsArgs),
    /// Follow the running server's events (devices, call legs) as JSON
    /// lines.
    Events(EventsArgs),
    /// Manage console users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage REST API keys.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
}

/// `edgepbx user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a console user.
    Add {
        /// Login e-mail.
        email: String,
        /// system-admin, tenant-admin, read-only or extension-user.
        #[arg(long)]
        role: String,
        /// The user's tenant (not for a system admin).
        #[arg(long)]
        tenant: Option<String>,
        /// An extension user's extension (of the tenant).
        #[arg(long)]
        extension: Option<String>,
        /// Password (a random one is generated and printed when omitted).
        #[arg(long, env = "EDGEPBX_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// List console users.
    List {
        /// Only this tenant's.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Set a user's password (ends their sessions).
    Passwd {
        /// Login e-mail.
        email: String,
        /// The new password (generated and printed when omitted).
        #[arg(long, env = "EDGEPBX_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Remove a console user.
    Rm {
        /// Login e-mail.
        email: String,
    },
}

/// `edgepbx apikey ...`
#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create an API key for a tenant; prints it once.
    Add {
        /// Tenant code.
        tenant: String,
        /// What it is for.
        #[arg(long, default_value = "cli")]
        name: String,
        /// It may only read.
        #[arg(long)]
        read_only: bool,
    },
    /// List a tenant's API keys (never the keys themselves).
    List {
        /// Tenant code.
        tenant: String,
    },
    /// Revoke an API key.
    Rm {
        /// Tenant code.
        tenant: String,
        /// The key's id.
        id: String,
    },
}

/// `edgepbx calls`
#[derive(Debug, Args)]
pub struct CallsArgs {
    /// Tenant code.
    pub tenant: String,
    /// Show the latest N call records instead of the calls in progress.
    #[arg(long)]
    pub recent: Option<u32>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `edgepbx events`
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this tenant's events.
    #[arg(long)]
    pub tenant: Option<String>,
}

/// Options of `edgepbx serve`; each overrides the config file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// SIP over UDP listen address [default: 0.0.0.0:5060]
    #[arg(long, env = "EDGEPBX_SIP_UDP")]
    pub sip_udp: Option<SocketAddr>,
    /// SIP over TCP listen address [default: 0.0.0.0:5060]
    #[arg(long, env = "EDGEPBX_SIP_TCP")]
    pub sip_tcp: Option<SocketAddr>,
    /// HTTP listen address for the console and the REST API [default:
    /// 0.0.0.0:8080]
    #[arg(long, env = "EDGEPBX_HTTP")]
    pub http: Option<SocketAddr>,
    /// PEM certificate chain: the HTTP listener speaks HTTPS (with
    /// --http-key).
    #[arg(long, env = "EDGEPBX_HTTP_CERT", requires = "http_key")]
    pub http_cert: Option<PathBuf>,
    /// PEM private key for --http-cert.
    #[arg(long, env = "EDGEPBX_HTTP_KEY", requires = "http_cert")]
    pub http_key: Option<PathBuf>,
    /// On first start, create tenant DEMO with extensions 100-109 and a
    /// console user for it.
    #[arg(long)]
    pub demo: bool,
}

/// `edgepbx tenant ...`
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Add a tenant.
    Add {
        /// Tenant code, 2-16 upper-case letters and digits (e.g. ACME).
        code: String,
        /// The tenant's SIP domain (also the digest realm).
        #[arg(long)]
        domain: String,
    },
    /// Set a tenant's limits; `off` removes one (the server's default
    /// applies).
    Limits {
        /// Tenant code.
        code: String,
        /// Most extensions.
        #[arg(long)]
        max_extensions: Option<String>,
        /// Most simultaneous calls (default: the server's
        /// calls.max_calls_per_tenant).
        #[arg(long)]
        max_calls: Option<String>,
        /// Most devices registered per extension, at least 1 (the server's
        /// registrar.max_bindings_per_extension applies when lower).
        #[arg(long)]
        max_bindings: Option<String>,
    },
    /// Set a tenant's feature codes and BLF privacy.
    Features {
        /// Tenant code.
        code: String,
        /// Dialled before an extension to pick up its ringing call
        /// (default `**`; 1 to 4 of `*#0-9`, starting with `*` or `#`).
        #[arg(long)]
        pickup_code: Option<String>,
        /// Whether BLF keys of other extensions show who is calling:
        /// `on` (the default) or `off`.
        #[arg(long)]
        blf_shows_caller: Option<String>,
        /// The number voicemail callers reach with `*` (an extension or
        /// group), or `off`.
        #[arg(long)]
        operator: Option<String>,
    },
    /// Set a new provisioning password for the tenant's phones (printed
    /// once; the old one stops working), or with --off remove it.
    Provisioning {
        /// Tenant code.
        code: String,
        /// Remove the password: phones fetch nothing.
        #[arg(long)]
        off: bool,
    },
    /// List tenants.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `edgepbx device ...`
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Add a desk phone, or change one with --replace (a running server
    /// tells it to fetch its files again).
    Add(DeviceArgs),
    /// List a tenant's phones.
    List {
        /// Tenant code.
        tenant: String,
        /// Only this extension's.
        #[arg(long)]
        extension: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a phone.
    Rm {
        /// Tenant code.
        tenant: String,
        /// MAC address.
        mac: String,
    },
    /// Tell a registered phone (all the tenant's with --all) to fetch its
    /// files again; needs the server running.
    Resync {
        /// Tenant code.
        tenant: String,
        /// MAC address.
        #[arg(required_unless_present = "all")]
        mac: Option<String>,
        /// Every phone of the tenant.
        #[arg(long, conflicts_with = "mac")]
        all: bool,
    },
}

/// `edgepbx device add`
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// Tenant code.
    pub tenant: String,
    /// MAC address, with or without separators, either case.
    pub mac: String,
    /// The extension it registers as.
    #[arg(long)]
    pub extension: String,
    /// yealink or grandstream (default: from the MAC address's maker).
    #[arg(long)]
    pub vendor: Option<String>,
    /// Model (T46U, GXP2170...): how many line keys it has.
    #[arg(long)]
    pub model: Option<String>,
    /// BLF keys: numbers separated by commas, each optionally `=Label`
    /// (`101=Reception,102`).
    #[arg(long, value_delimiter = ',')]
    pub blf: Vec<String>,
    /// What the console shows for it.
    #[arg(long)]
    pub label: Option<String>,
    /// Replace the phone of that MAC address instead of adding one.
    #[arg(long)]
    pub replace: bool,
}

/// `edgepbx ext ...`
#[derive(Debug, Subcommand)]
pub enum ExtCommand {
    /// Add an extension; prints the SIP password when none is given.
    Add {
        /// Tenant code.
        tenant: String,
        /// Extension number.
        number: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// SIP password (a long random one is generated when omitted).
        #[arg(long, env = "EDGEPBX_EXT_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Additional numbers that reach this extension.
        #[arg(long = "alias")]
        aliases: Vec<String>,
    },
    /// List a tenant's extensions.
    List {
        /// Tenant code.
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set a new SIP password (generated and printed when none is given).
    Passwd {
        /// Tenant code.
        tenant: String,
        /// Extension number.
        number: String,
        /// The new password.
        #[arg(long, env = "EDGEPBX_EXT_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Change how an extension's calls are handled. Only the options given
    /// change; `off` clears a setting.
    Set(Box<ExtSettingsArgs>),
    /// Remove an extension and its registrations.
    Rm {
        /// Tenant code.
        tenant: String,
        /// Extension number.
        number: String,
    },
}

/// `edgepbx ext set`
#[derive(Debug, Args)]
pub struct ExtSettingsArgs {
    /// Tenant code.
    pub tenant: String,
    /// Extension number.
    pub number: String,
    /// Seconds its devices ring (`off`: the server default).
    #[arg(long)]
    pub ring_timeout: Option<String>,
    /// Do not disturb: `on` or `off`.
    #[arg(long)]
    pub dnd: Option<String>,
    /// Away (shown to buddy lists; calls ring as usual): `on` or `off`.
    #[arg(long)]
    pub away: Option<String>,
    /// Forward every call: a number, `voicemail` or `off`.
    #[arg(long)]
    pub forward_unconditional: Option<String>,
    /// Forward when busy: a number, `voicemail` or `off`.
    #[arg(long)]
    pub forward_busy: Option<String>,
    /// Forward when unanswered: a number, `voicemail` or `off`.
    #[arg(long)]
    pub forward_no_answer: Option<String>,
    /// Forward when no device is registered: a number, `voicemail` or `off`.
    #[arg(long)]
    pub forward_offline: Option<String>,
    /// Find-me/follow-me: `simultaneous:` or `sequential:` then
    /// `NUMBER/SECONDS` items separated by commas, or `off`.
    #[arg(long)]
    pub follow_me: Option<String>,
    /// Voicemail for unanswered calls: `on` or `off`.
    #[arg(long)]
    pub voicemail: Option<String>,
    /// Number shown on external calls (`off`: the tenant's).
    #[arg(long)]
    pub outbound_caller_id: Option<String>,
    /// Text put before the caller's name on calls to this extension, or
    /// `off`.
    #[arg(long)]
    pub inbound_prefix: Option<String>,
    /// External numbers it may call: `all`, `none`, or patterns such as
    /// `0X.,+33X.` (X any digit, Z 1-9, N 2-9, final `.` one or more).
    #[arg(long)]
    pub allowed_destinations: Option<String>,
}

/// `edgepbx trunk ...`
#[derive(Debug, Subcommand)]
pub enum TrunkCommand {
    /// Add a trunk, or replace the tenant's trunk of that name.
    Add {
        /// Tenant code.
        tenant: String,
        /// Its name (a-z, 0-9, '-').
        name: String,
        /// The carrier: host or host:port.
        #[arg(long)]
        host: String,
        /// Digest username at the carrier.
        #[arg(long)]
        username: Option<String>,
        /// Digest password at the carrier.
        #[arg(long, env = "EDGEPBX_TRUNK_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Register with the carrier (else it is authenticated by address).
        #[arg(long)]
        register: bool,
        /// The tenant's number shown on outbound calls.
        #[arg(long)]
        caller_id: Option<String>,
        /// An inbound number and the tenant number it rings, as DID=NUMBER;
        /// repeat for each.
        #[arg(long = "did")]
        dids: Vec<String>,
    },
    /// List a tenant's trunks (passwords are never shown).
    List {
        /// Tenant code.
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a trunk.
    Rm {
        /// Tenant code.
        tenant: String,
        /// Its name.
        name: String,
    },
}

/// `edgepbx group ...`
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Add a ring group (or, with --virtual, a virtual extension).
    Add {
        /// Tenant code.
        tenant: String,
        /// Its number (shares the namespace of extension numbers).
        number: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Member extensions, in order, separated by commas.
        #[arg(long, value_delimiter = ',', required = true)]
        members: Vec<String>,
        /// ring-all, hunt, round-robin, random or least-recent.
        #[arg(long, default_value = "ring-all")]
        strategy: String,
        /// Seconds each member (all, for ring-all) rings.
        #[arg(long, default_value_t = 20)]
        ring_timeout: u32,
        /// Where unanswered calls go: a number or `voicemail`.
        #[arg(long)]
        no_answer: Option<String>,
        /// A virtual extension: rings all members, has no devices itself.
        #[arg(long = "virtual")]
        is_virtual: bool,
    },
    /// List a tenant's groups.
    List {
        /// Tenant code.
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a group.
    Rm {
        /// Tenant code.
        tenant: String,
        /// Its number.
        number: String,
    },
}

/// `edgepbx policy ...`
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy component without storing it.
    Check {
        /// The component (`.wasm`).
        file: PathBuf,
    },
    /// Print what a policy decides for a call described in JSON: a local
    /// playground, no server or data directory needed.
    Try {
        /// The component (`.wasm`); `builtin` for the built-in policy.
        file: PathBuf,
        /// The call, directory and key-value content (JSON).
        #[arg(long)]
        context: PathBuf,
    },
    /// Store a policy as the tenant's next version (inactive until
    /// activated).
    Upload {
        /// Tenant code.
        tenant: String,
        /// The component (`.wasm`).
        file: PathBuf,
        /// Who uploads it, kept with the version.
        #[arg(long, env = "USER", default_value = "cli")]
        uploader: String,
        /// Activate it right away.
        #[arg(long)]
        activate: bool,
    },
    /// List a tenant's policy versions.
    List {
        /// Tenant code.
        tenant: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Make a version the tenant's policy (also how to restore an earlier one).
    Activate {
        /// Tenant code.
        tenant: String,
        /// The version to activate.
        version: u32,
    },
    /// Return the tenant to the built-in policy.
    Deactivate {
        /// Tenant code.
        tenant: String,
    },
}
