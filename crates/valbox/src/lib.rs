//! The `valbox` command: the server, users on a data directory, and the
//! REST client commands.

pub mod cli;
