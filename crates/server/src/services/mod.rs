//! Services: the platform's operations in its own terms, between the web
//! layer (routes, extractors) and the runtime and capabilities.

pub mod call;

pub mod api_calls;
pub mod call_log;
pub mod compile_gate;
pub mod components;
pub mod cron;
pub mod declared;
pub mod deploy;
pub mod env_vars;
pub mod error;
pub mod least_privilege;
pub mod libraries;
pub mod mail_delivery;
pub mod owner_slots;
pub mod runnable;
pub mod scope_migration;
pub mod scope_usage;
pub mod sign_in;
pub mod tokens;
pub mod val_access;
pub mod val_cache;
pub mod val_views;
