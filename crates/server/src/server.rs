//! Starting and stopping the HTTP server.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::api;
use crate::app::App;
use crate::config::Config;
use crate::edge::Edge;

/// A running server. Dropping it does not stop it; call `shutdown`.
pub struct Server {
    pub addr: SocketAddr,
    /// Where `GET /metrics` is served, with `Config::metrics_listen`.
    pub metrics_addr: Option<SocketAddr>,
    /// Where mail for email vals is received, with `Config::mail`.
    pub mail_addr: Option<SocketAddr>,
    pub app: App,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    log_writer: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Bind and serve in the background. With port 0 the OS picks a port;
    /// `public_url`, unless set to another, is then set from the bound
    /// address.
    pub async fn start(mut config: Config) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let tls = match &config.tls {
            Some(files) => Some(crate::edge::tls_acceptor(files)?),
            None => None,
        };
        if config.listen.port() == 0 && config.public_url.ends_with(":0") {
            let scheme = if tls.is_some() { "https" } else { "http" };
            config.public_url = format!("{scheme}://{addr}");
        }
        config.listen = addr;
        let metrics_listener = match config.metrics_listen {
            Some(at) => Some(
                TcpListener::bind(at)
                    .await
                    .with_context(|| format!("binding the metrics listener {at}"))?,
            ),
            None => None,
        };
        // The internal listener is bound first: with port 0, the address
        // other nodes are told is the one the OS picked.
        let cluster_listener = match &mut config.cluster {
            Some(cluster) => {
                let listener = TcpListener::bind(cluster.listen)
                    .await
                    .with_context(|| format!("binding the cluster listener {}", cluster.listen))?;
                cluster.listen = listener.local_addr()?;
                Some(listener)
            }
            None => None,
        };
        let mail_listener = match &mut config.mail {
            Some(mail) => {
                let listener = TcpListener::bind(mail.listen)
                    .await
                    .with_context(|| format!("binding the SMTP listener {}", mail.listen))?;
                mail.listen = listener.local_addr()?;
                Some(listener)
            }
            None => None,
        };
        let mail_addr = config.mail.as_ref().map(|m| m.listen);
        let (app, log_writer) = App::open(config).await?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        let edge = |tls| Edge {
            limits: app.config.edge.clone(),
            proxies: app.config.trusted_proxies.clone(),
            tls,
            metrics: app.metrics.clone(),
        };
        let mut tasks = vec![tokio::spawn(crate::edge::serve(
            listener,
            crate::router::router(app.clone()),
            edge(tls),
            until_stopped(),
        ))];
        let mut metrics_addr = None;
        if let Some(listener) = metrics_listener {
            metrics_addr = Some(listener.local_addr()?);
            tasks.push(tokio::spawn(crate::edge::serve(
                listener,
                api::metrics::router(app.clone()),
                edge(None),
                until_stopped(),
            )));
        }
        if let Some(listener) = cluster_listener {
            tasks.push(tokio::spawn(crate::edge::serve(
                listener,
                crate::cluster::router(app.clone()),
                edge(None),
                until_stopped(),
            )));
        }
        if let Some(listener) = mail_listener {
            tasks.push(crate::mail_in::start(
                app.clone(),
                listener,
                until_stopped(),
            )?);
        }
        Ok(Self {
            addr,
            metrics_addr,
            mail_addr,
            app,
            stop,
            tasks,
            log_writer,
        })
    }

    /// Stop accepting requests, finish the ones in flight, and write the
    /// remaining call logs.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.app.stop_background();
        for task in self.tasks {
            task.await?;
        }
        // Its users' databases synced and handed over, for the next node.
        if let Some(homes) = &self.app.homes {
            homes.drain().await;
        }
        // Counts of scope usage not yet written are written now.
        if let Err(e) = crate::services::scope_usage::flush(&self.app).await {
            tracing::error!("writing scope usage at shutdown: {e:#}");
        }
        // With the router and this last handle gone, the log writer drains
        // its queue and ends.
        drop(self.app);
        self.log_writer.await?;
        Ok(())
    }
}
