//! Connecting to a SurrealDB server: `ws://`, or `wss://` with the
//! system's roots and, for a private CA, a PEM file of its own.

use std::path::Path;
use std::sync::Arc;

use surrealdb::Surreal;
use surrealdb::engine::any::{self, Any};
use surrealdb::opt::Config;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::StoreError;

/// Opens a connection to `url` (`ws://` or `wss://`), trusting `ca_file`'s
/// certificates besides the system's for `wss://`.
pub(crate) async fn connect(url: &str, ca_file: Option<&Path>) -> Result<Surreal<Any>, StoreError> {
    let rest = match url.split_once("://") {
        Some(("ws", rest)) => {
            if ca_file.is_some() {
                return Err(StoreError::invalid("ca_file", "is for wss:// only"));
            }
            rest
        }
        Some(("wss", rest)) => rest,
        _ => {
            return Err(StoreError::invalid(
                "url",
                "must start with ws:// or wss://",
            ));
        }
    };
    // Keeps passwords out of the URL, and so out of the log lines.
    if rest
        .split('/')
        .next()
        .is_some_and(|authority| authority.contains('@'))
    {
        return Err(StoreError::invalid(
            "url",
            "credentials go in username and password, not in the URL",
        ));
    }
    if url.starts_with("ws://") {
        return Ok(any::connect(url).await?);
    }
    let tls = client_config(ca_file)?;
    Ok(any::connect((url, Config::new().rustls(tls))).await?)
}

/// TLS with the ring provider (as the rest of edgepbx), the system's
/// roots and those of `ca_file`.
fn client_config(ca_file: Option<&Path>) -> Result<ClientConfig, StoreError> {
    let bad = |reason: String| StoreError::invalid("ca_file", reason);
    let mut roots = RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system root rustls cannot use is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(format!("{}: {e}", path.display())))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("{}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(bad(format!("{} holds no certificate", path.display())));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bad(format!("{}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}
