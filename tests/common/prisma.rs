//! `prisma validate` for tests (npm `prisma`, offline: its checks run in
//! bundled wasm once PRISMA_SCHEMA_ENGINE_BINARY is set). npm installs
//! prisma into /var/tmp/crmbench-prisma on first use, once for all test
//! processes (flock).

use std::path::{Path, PathBuf};
use std::process::Command;

const PRISMA_DIR: &str = "/var/tmp/crmbench-prisma";
const PRISMA_VERSION: &str = "7.10.1";

/// The prisma binary, installed when missing.
pub fn prisma() -> PathBuf {
    let bin = Path::new(PRISMA_DIR).join("node_modules/.bin/prisma");
    if !bin.exists() {
        std::fs::create_dir_all(PRISMA_DIR).unwrap();
        let status = Command::new("flock")
            .args([&format!("{PRISMA_DIR}/.lock"), "sh", "-c"])
            .arg(format!(
                "test -x {bin} || npm install --prefix {PRISMA_DIR} --no-audit --no-fund prisma@{PRISMA_VERSION}",
                bin = bin.display()
            ))
            .status()
            .expect("npm is needed for this test: apt-get install -y npm");
        assert!(status.success(), "npm install prisma failed");
    }
    bin
}

/// Whether `prisma validate` accepts `schema`, and what it said.
pub fn validate(schema: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("schema.prisma");
    std::fs::write(&file, schema).unwrap();
    let out = Command::new(prisma())
        .arg("validate")
        .arg("--schema")
        .arg(&file)
        .env("PRISMA_SCHEMA_ENGINE_BINARY", "/bin/true")
        .env("PRISMA_HIDE_UPDATE_MESSAGE", "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}
