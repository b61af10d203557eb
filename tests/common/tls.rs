//! TLS on this process's private server: certificates made with the
//! `openssl` command, installed in the data folder as the server wants them
//! (0600, owned by the server's user), and `ssl` turned on or off with the
//! `pg_hba.conf` a test asks for. tests/tls.rs and tests/pipeline.rs share it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crmbench::pg::{self, Target};

/// Run `openssl args` in `dir`; panics with its stderr when it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl command (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate for `/CN={name}` in `dir`: (name.crt,
/// name.key). Used as a CA, or as a server's own certificate.
pub fn self_signed(dir: &Path, name: &str) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
    dir.join(format!("{name}.crt"))
}

/// A server certificate for DNS name `localhost` only, signed by the CA
/// `ca` ([`self_signed`]): server.crt and server.key in `dir`.
pub fn server_cert_signed_by(dir: &Path, ca: &str) {
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.crt",
        ],
    );
}

/// Write `text` into the data folder as `name`, 0600 and owned by the
/// server's user (a key file must be).
pub fn server_file(name: &str, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let server = &super::cluster().server;
    let path = server.data_dir().join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    if let Some(user) = &server.state().server_user {
        let user = nix::unistd::User::from_name(user).unwrap().unwrap();
        nix::unistd::chown(&path, Some(user.uid), Some(user.gid)).unwrap();
    }
}

/// Install `dir`'s server.crt and server.key as the server's certificate.
pub fn install_server_cert(dir: &Path) {
    for name in ["server.crt", "server.key"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        server_file(name, &text);
    }
}

/// Write `hba` as pg_hba.conf, set `ssl` on or off and reload; returns once
/// a new session sees the setting (the reload is asynchronous).
pub async fn configure(admin: &tokio_postgres::Client, hba: &str, ssl: bool) {
    server_file("pg_hba.conf", hba);
    let on = if ssl { "on" } else { "off" };
    // One by one: ALTER SYSTEM refuses to run in a multi-statement batch.
    for sql in [
        format!("ALTER SYSTEM SET ssl = {on}"),
        "SELECT pg_reload_conf()".into(),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    for _ in 0..100 {
        let fresh = pg::connect(&Target::private(super::cluster().server.clone()).admin())
            .await
            .unwrap();
        let row = fresh.query_one("SHOW ssl", &[]).await.unwrap();
        if row.get::<_, String>(0) == on {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the server did not take ssl = {on}");
}
