//! Host bindings generated from `wit/`. Every world imports the same
//! platform interfaces; the script and cron worlds reuse the HTTP world's
//! import traits so each capability is implemented once.

pub mod http {
    wasmtime::component::bindgen!({
        world: "http-val",
        path: "../../wit",
        imports: { default: async },
        exports: { default: async },
    });
}

/// Bindings for `world` whose platform imports are the HTTP world's, so
/// that each capability implements one set of import traits.
macro_rules! sharing_platform_imports {
    ($world:tt) => {
        wasmtime::component::bindgen!({
            world: $world,
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
    };
}

pub mod script {
    sharing_platform_imports!("script-val");
}

pub mod cron {
    sharing_platform_imports!("cron-val");
}

pub mod email_val {
    sharing_platform_imports!("email-val");
}

pub use cron::exports::valbox::platform::cron::CronEvent;
pub use email_val::exports::valbox::platform::email_handler::{ReceivedAttachment, ReceivedEmail};
pub use http::exports::valbox::platform::http_handler::{
    Request as HttpRequest, Response as HttpResponse,
};
pub use http::valbox::platform::{blob, email, env, fetch, http_types, sqlite, types, vals};

/// Export names that mark a component's kind.
pub const HTTP_EXPORT: &str = "valbox:platform/http-handler@0.1.0";
pub const SCRIPT_EXPORT: &str = "valbox:platform/script@0.1.0";
pub const CRON_EXPORT: &str = "valbox:platform/cron@0.1.0";
pub const EMAIL_EXPORT: &str = "valbox:platform/email-handler@0.1.0";
