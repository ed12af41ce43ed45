//! Host bindings generated from `wit/`. Both worlds import the same
//! platform interfaces; the script world reuses the HTTP world's import
//! traits so each capability is implemented once.

pub mod http {
    wasmtime::component::bindgen!({
        world: "http-val",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
    });
}

pub mod script {
    wasmtime::component::bindgen!({
        world: "script-val",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
        with: {
            "valbox:platform/types": super::http::valbox::platform::types,
            "valbox:platform/env": super::http::valbox::platform::env,
            "valbox:platform/blob": super::http::valbox::platform::blob,
            "valbox:platform/sqlite": super::http::valbox::platform::sqlite,
            "valbox:platform/email": super::http::valbox::platform::email,
            "valbox:platform/fetch": super::http::valbox::platform::fetch,
            "valbox:platform/http-types": super::http::valbox::platform::http_types,
            "valbox:platform/vals": super::http::valbox::platform::vals,
        },
    });
}

pub mod cron {
    wasmtime::component::bindgen!({
        world: "cron-val",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
        with: {
            "valbox:platform/types": super::http::valbox::platform::types,
            "valbox:platform/env": super::http::valbox::platform::env,
            "valbox:platform/blob": super::http::valbox::platform::blob,
            "valbox:platform/sqlite": super::http::valbox::platform::sqlite,
            "valbox:platform/email": super::http::valbox::platform::email,
            "valbox:platform/fetch": super::http::valbox::platform::fetch,
            "valbox:platform/http-types": super::http::valbox::platform::http_types,
            "valbox:platform/vals": super::http::valbox::platform::vals,
        },
    });
}

pub use cron::exports::valbox::platform::cron::CronEvent;
pub use http::exports::valbox::platform::http_handler::{
    Request as HttpRequest, Response as HttpResponse,
};
pub use http::valbox::platform::{blob, email, env, fetch, http_types, sqlite, types, vals};

/// Export names that mark a component's kind.
pub const HTTP_EXPORT: &str = "valbox:platform/http-handler@0.1.0";
pub const SCRIPT_EXPORT: &str = "valbox:platform/script@0.1.0";
pub const CRON_EXPORT: &str = "valbox:platform/cron@0.1.0";
