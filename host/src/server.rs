//! Starting and stopping the HTTP server.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api;
use crate::app::App;
use crate::config::Config;

/// A running server. Dropping it does not stop it; call `shutdown`.
pub struct Server {
    pub addr: SocketAddr,
    pub app: App,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    log_writer: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Bind and serve in the background. With port 0 the OS picks a port;
    /// `public_url` is then set from the bound address.
    pub async fn start(mut config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        if config.listen.port() == 0 {
            config.public_url = format!("http://{addr}");
        }
        config.listen = addr;
        let (app, log_writer) = App::open(config)?;
        let router = api::router(app.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let edge = app.config.edge.clone();
        let task = tokio::spawn(async move {
            crate::edge::serve(listener, router, edge, async {
                let _ = stopped.await;
            })
            .await;
            Ok(())
        });
        Ok(Self {
            addr,
            app,
            stop,
            task,
            log_writer,
        })
    }

    /// Stop accepting requests, finish the ones in flight, and write the
    /// remaining call logs.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let served = self.task.await?;
        // Counts of scope usage not yet written are written now.
        if let Err(e) = crate::services::scope_usage::flush(&self.app).await {
            tracing::error!("writing scope usage at shutdown: {e:#}");
        }
        // With the router and this last handle gone, the log writer drains
        // its queue and ends.
        drop(self.app);
        self.log_writer.await?;
        served
    }
}
