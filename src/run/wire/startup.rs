//! Opening a wire connection as libpq does: each host of the connection
//! string in turn (TCP, with `hostaddr` when given, or a Unix socket), TLS
//! by the spec's `sslmode` with the connector [`crate::pg::tls`] built (so
//! certificate checks are the same as on every other connection), the
//! startup message, authentication (trust, password, md5, SCRAM-SHA-256,
//! without channel binding), and `SET ROLE` when the spec asks for one.
//! `sslmode=allow` tries plain first and TLS when the server turns plain
//! away, as libpq does.

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{
    md5_hash,
    sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256},
};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio_postgres::config::{ChannelBinding as ChannelBindingMode, Host};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

use super::io::{Duplex, Io};
use super::reply::DbError;
use super::unix::ReadOnlyUnix;
use crate::error::{Error, Result};
use crate::pg::ConnSpec;
use crate::pg::tls::SslMode;

/// Connect, authenticate and wait until the server is ready for queries.
pub(super) async fn open(spec: &ConnSpec) -> Result<Io> {
    // tokio-postgres keeps a TLS stream's certificate hash to itself, so
    // this layer cannot bind SCRAM to the channel: refuse rather than drop
    // what the connection string demands.
    if spec.config.get_channel_binding() == ChannelBindingMode::Require {
        return Err(Error::Usage {
            message: format!(
                "{} asks for channel_binding=require, which --protocol pipeline does not speak \
                 (its SCRAM-SHA-256 has no channel binding)",
                spec.label
            ),
            fix: "use --protocol prepared, or channel_binding=prefer".into(),
        });
    }
    let mode = spec.tls.settings().mode;
    match open_as(spec, mode).await {
        // allow: a server that refuses the plain session (a `hostssl` or
        // `hostnossl … reject` rule) is asked again with TLS.
        Err(Error::Auth { .. }) if mode == SslMode::Allow => open_as(spec, SslMode::Require).await,
        other => other,
    }
}

/// [`open`] with TLS as `mode` says.
async fn open_as(spec: &ConnSpec, mode: SslMode) -> Result<Io> {
    let stream = match spec.config.get_connect_timeout() {
        Some(limit) => tokio::time::timeout(*limit, dial(spec, mode))
            .await
            .unwrap_or_else(|_| Err(refused(spec, "timed out"))),
        None => dial(spec, mode).await,
    }?;
    let mut io = Io::new(stream);
    startup(&mut io, spec).await?;
    authenticate(&mut io, spec).await?;
    until_ready(&mut io, spec).await?;
    if let Some(role) = &spec.set_role {
        let sql = format!("SET ROLE {}", crate::pg::quote_ident(role));
        super::simple(&mut io, &sql)
            .await
            .map_err(|e| e.into_error(format!("SET ROLE {role} on {}", spec.label)))?;
    }
    Ok(io)
}

fn refused(spec: &ConnSpec, detail: impl ToString) -> Error {
    Error::ConnectionRefused {
        target: spec.label.clone(),
        detail: detail.to_string(),
    }
}

fn lost(spec: &ConnSpec, e: std::io::Error) -> Error {
    Error::ConnectionLost {
        context: format!("connecting to {}", spec.label),
        detail: e.to_string(),
    }
}

/// The first host that accepts a connection, TLS negotiated on TCP.
async fn dial(spec: &ConnSpec, mode: SslMode) -> Result<Box<dyn Duplex>> {
    let config = &spec.config;
    let ports = config.get_ports();
    let addrs = config.get_hostaddrs();
    let mut last = String::from("no host to connect to");
    for (i, host) in config.get_hosts().iter().enumerate() {
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        match host {
            Host::Unix(dir) => {
                let path = dir.join(format!(".s.PGSQL.{port}"));
                match UnixStream::connect(path).await.and_then(ReadOnlyUnix::new) {
                    Ok(s) => return Ok(Box::new(s)),
                    Err(e) => last = e.to_string(),
                }
            }
            Host::Tcp(name) => {
                let tcp = match addrs.get(i) {
                    Some(addr) => TcpStream::connect((*addr, port)).await,
                    None => TcpStream::connect((name.as_str(), port)).await,
                };
                match tcp {
                    Ok(s) => {
                        // One batch per frame: no Nagle delay between writes.
                        let _ = s.set_nodelay(true);
                        return negotiate_tls(spec, mode, name, s).await;
                    }
                    Err(e) => last = e.to_string(),
                }
            }
        }
    }
    Err(refused(spec, last))
}

/// TLS as `mode` asks: none for disable and allow (its first attempt),
/// TLS when the server agrees for prefer, TLS or a refusal for require and
/// stricter. Certificates are checked as the spec's connector says.
async fn negotiate_tls(
    spec: &ConnSpec,
    mode: SslMode,
    host: &str,
    mut s: TcpStream,
) -> Result<Box<dyn Duplex>> {
    if matches!(mode, SslMode::Disable | SslMode::Allow) {
        return Ok(Box::new(s));
    }
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    s.write_all(&buf).await.map_err(|e| lost(spec, e))?;
    let mut answer = [0u8; 1];
    s.read_exact(&mut answer).await.map_err(|e| lost(spec, e))?;
    if answer[0] != b'S' {
        if mode == SslMode::Prefer {
            return Ok(Box::new(s));
        }
        return Err(refused(
            spec,
            format!("the server does not accept TLS (sslmode={})", mode.as_str()),
        ));
    }
    let mut make = spec.tls.connector();
    let connect = MakeTlsConnect::<TcpStream>::make_tls_connect(&mut make, host)
        .map_err(|e| refused(spec, format!("TLS: {e}")))?;
    let stream = connect
        .connect(s)
        .await
        .map_err(|e| refused(spec, format!("TLS handshake: {e}")))?;
    Ok(Box::new(stream))
}

async fn startup(io: &mut Io, spec: &ConnSpec) -> Result<()> {
    let config = &spec.config;
    let mut params: Vec<(&str, &str)> = vec![("client_encoding", "UTF8")];
    if let Some(user) = config.get_user() {
        params.push(("user", user));
    }
    if let Some(db) = config.get_dbname() {
        params.push(("database", db));
    }
    if let Some(app) = config.get_application_name() {
        params.push(("application_name", app));
    }
    if let Some(options) = config.get_options() {
        params.push(("options", options));
    }
    frontend::startup_message(params, &mut io.write).map_err(|e| lost(spec, e))?;
    io.send().await.map_err(|e| lost(spec, e))
}

/// Answer the server's authentication requests until it accepts.
async fn authenticate(io: &mut Io, spec: &ConnSpec) -> Result<()> {
    let user = spec.config.get_user().unwrap_or_default();
    let password = || {
        spec.config.get_password().ok_or_else(|| Error::Auth {
            target: spec.label.clone(),
            detail: "the server asks for a password and none was given".into(),
        })
    };
    let mut scram: Option<ScramSha256> = None;
    loop {
        let message = io.recv().await.map_err(|e| lost(spec, e))?;
        match message {
            Message::AuthenticationOk => return Ok(()),
            Message::AuthenticationCleartextPassword => {
                frontend::password_message(password()?, &mut io.write)
                    .map_err(|e| lost(spec, e))?;
            }
            Message::AuthenticationMd5Password(body) => {
                let hash = md5_hash(user.as_bytes(), password()?, body.salt());
                frontend::password_message(hash.as_bytes(), &mut io.write)
                    .map_err(|e| lost(spec, e))?;
            }
            Message::AuthenticationSasl(body) => {
                let mut offered = body.mechanisms();
                let mut scram_offered = false;
                while let Ok(Some(m)) = offered.next() {
                    scram_offered |= m == SCRAM_SHA_256;
                }
                if !scram_offered {
                    return Err(unsupported(spec));
                }
                let s = ScramSha256::new(password()?, ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut io.write)
                    .map_err(|e| lost(spec, e))?;
                scram = Some(s);
            }
            Message::AuthenticationSaslContinue(body) => {
                let s = scram.as_mut().ok_or_else(|| unsupported(spec))?;
                s.update(body.data()).map_err(|e| auth(spec, e))?;
                frontend::sasl_response(s.message(), &mut io.write).map_err(|e| lost(spec, e))?;
            }
            Message::AuthenticationSaslFinal(body) => {
                let s = scram.as_mut().ok_or_else(|| unsupported(spec))?;
                s.finish(body.data()).map_err(|e| auth(spec, e))?;
                continue;
            }
            Message::ErrorResponse(body) => return Err(connect_error(spec, DbError::from(&body))),
            _ => return Err(unsupported(spec)),
        }
        io.send().await.map_err(|e| lost(spec, e))?;
    }
}

fn unsupported(spec: &ConnSpec) -> Error {
    Error::Auth {
        target: spec.label.clone(),
        detail: "the server asks for an authentication method the pipeline protocol does not \
                 speak (it speaks trust, password, md5 and SCRAM-SHA-256)"
            .into(),
    }
}

fn auth(spec: &ConnSpec, e: std::io::Error) -> Error {
    Error::Auth {
        target: spec.label.clone(),
        detail: format!("SCRAM: {e}"),
    }
}

/// An error the server sent while connecting: bad credentials (class 28)
/// are an authentication failure, the rest keep their SQLSTATE (57P03
/// while recovering: the driver waits and retries).
fn connect_error(spec: &ConnSpec, e: DbError) -> Error {
    if e.code.starts_with("28") {
        return Error::Auth {
            target: spec.label.clone(),
            detail: e.message,
        };
    }
    e.into_error(format!("connecting to {}", spec.label))
}

/// Skip the session's parameters and key data up to ReadyForQuery.
async fn until_ready(io: &mut Io, spec: &ConnSpec) -> Result<()> {
    loop {
        match io.recv().await.map_err(|e| lost(spec, e))? {
            Message::ReadyForQuery(_) => return Ok(()),
            Message::ErrorResponse(body) => return Err(connect_error(spec, DbError::from(&body))),
            _ => {}
        }
    }
}
