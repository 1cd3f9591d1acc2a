//! A real server for a test: [`mkoba_server::start`] on `127.0.0.1:0` with a data directory
//! of its own (removed with it) and the fixed M-Pesa test key.

use std::net::SocketAddr;
use std::path::Path;

use mkoba_server::{Running, Settings};

/// A running server and the data directory it owns.
#[derive(Debug)]
pub struct TestServer {
    pub running: Running,
    dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with the settings `configure` makes from the test defaults.
    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> TestServer {
        TestServer::start_in(
            tempfile::tempdir().expect("a temporary directory"),
            configure,
        )
        .await
    }

    /// Stops the server and starts it again on the same data directory (a restart: only
    /// what is in the database carries over).
    pub async fn restart(self, configure: impl FnOnce(&mut Settings)) -> TestServer {
        let TestServer { running, dir } = self;
        running.stop().await;
        TestServer::start_in(dir, configure).await
    }

    async fn start_in(dir: tempfile::TempDir, configure: impl FnOnce(&mut Settings)) -> TestServer {
        let mut settings = Settings::new(
            dir.path().join("data"),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        );
        settings.mpesa_key_file = Some(crate::MPESA_TEST_KEY.into());
        configure(&mut settings);
        let running = mkoba_server::start(settings)
            .await
            .expect("the server starts");
        TestServer { running, dir }
    }

    /// Stops the server (its data directory goes with it).
    pub async fn stop(self) {
        self.running.stop().await;
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        self.running.base_url()
    }

    /// The temporary directory the server lives in; its data directory is `data` inside.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}
