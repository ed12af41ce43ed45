//! Declaring what a val needs: the scopes it calls imports with, the
//! hosts it fetches from, and whether its instances may be reused. Each
//! macro writes a small custom section into
//! the component (`valbox:scopes`, `valbox:fetch-hosts`: names, one per
//! line); `valbox deploy` shows them against what the val is granted and
//! `--grant-declared` grants them, like an app's install prompt.

/// Declare the scopes this val's imports need, e.g.
/// `valbox_sdk::scopes!("blob:read", "blob:write");` at the top level of
/// the crate. Unknown names are refused at deploy.
#[macro_export]
macro_rules! scopes {
    ($($scope:literal),+ $(,)?) => {
        $crate::__declare!("valbox:scopes", $($scope),+);
    };
}

/// Declare the hosts this val fetches from (`*.example.com` for
/// subdomains), for its fetch allowlist:
/// `valbox_sdk::fetch_hosts!("api.example.com");`.
#[macro_export]
macro_rules! fetch_hosts {
    ($($host:literal),+ $(,)?) => {
        $crate::__declare!("valbox:fetch-hosts", $($host),+);
    };
}

/// Declare that one instance of this HTTP val may serve up to `n` calls,
/// keeping its memory between them (`valbox_sdk::reuse!(100);`): faster,
/// and the val's globals survive from one caller to the next. Granted
/// like the scopes (`--grant-declared`), or set with `--reuse N`. Read the
/// token and env vars with [`crate::env::get`] in each call, never from a
/// global: each call has its own.
#[macro_export]
macro_rules! reuse {
    ($n:literal) => {
        $crate::__declare!("valbox:reuse", $n);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __declare {
    ($section:literal, $($item:literal),+) => {
        const _: () = {
            const TEXT: &str = concat!($($item, "\n"),+);
            // Kept by the linker (`used`) as a custom section of its name;
            // sections of one name from several declarations are joined.
            #[used]
            #[unsafe(link_section = $section)]
            static DECLARED: [u8; TEXT.len()] = $crate::declare::bytes(TEXT);
        };
    };
}

/// `text` as an array of its bytes, at compile time.
#[doc(hidden)]
pub const fn bytes<const N: usize>(text: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let text = text.as_bytes();
    let mut i = 0;
    while i < N {
        out[i] = text[i];
        i += 1;
    }
    out
}
