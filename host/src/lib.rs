//! Valbox: run small user programs ("vals") as WebAssembly components,
//! reachable over HTTP, with capabilities granted by scoped tokens.
//!
//! The path of a request: [`api`] resolves the val and the caller
//! ([`auth`]), [`runtime`] runs the component under limits, and the
//! component reaches the world only through [`caps`].

pub mod api;
pub mod app;
pub mod auth;
pub mod caps;
pub mod cli;
pub mod config;
pub mod db;
pub mod edge;
pub mod error;
pub mod fsutil;
pub mod metrics;
pub mod runtime;
pub mod secrets;
pub mod server;
pub mod services;
pub mod ui;
pub mod web;
