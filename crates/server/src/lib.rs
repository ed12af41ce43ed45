//! The Valbox server: the services (calls, deploys, tokens, least
//! privilege) over the runtime and the capabilities, and the two faces over
//! them, the REST API ([`api`]) and the web UI ([`ui`]), behind the
//! [`edge`]. [`app::App`] is the composition root.

pub mod api;
pub mod app;
pub mod cluster;
pub mod config;
pub mod edge;
pub mod error;
pub mod mail_in;
pub mod metrics;
pub mod router;
pub mod server;
pub mod services;
pub mod ui;
pub mod web;
