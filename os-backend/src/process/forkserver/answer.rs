//! Answering one request with a typed function: decode, run, encode.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ipc::frame;
use crate::process::panic;
use crate::process::wire::Reply;

/// Decodes `request` as an `A`, runs `f` on it as worker code (a panic is
/// caught and told as the worker's), and encodes the [`Reply`]. `what`
/// names the work for a panic's message.
pub(crate) fn answer<A, B>(f: &dyn Fn(A) -> B, request: &[u8], what: &str) -> Vec<u8>
where
    A: DeserializeOwned,
    B: Serialize,
{
    let reply: Reply<B> = match frame::decode::<A>(request) {
        Ok(args) => match panic::in_worker(what, || f(args)) {
            Ok(response) => Reply::Done(response),
            Err(message) => Reply::Panicked(message),
        },
        Err(e) => Reply::BadRequest(e.to_string()),
    };
    frame::encode(&reply)
        .or_else(|e| {
            frame::encode(&Reply::<B>::BadRequest(format!(
                "the response could not be encoded: {e}"
            )))
        })
        .unwrap_or_default()
}

/// The reply to any request, whatever its type, when the worker cannot run
/// it: `Reply::Panicked(message)`. The variant carries no `B`, so its bytes
/// are the same for every `Reply<B>`.
pub(crate) fn refusal(message: String) -> Vec<u8> {
    frame::encode(&Reply::<()>::Panicked(message)).unwrap_or_default()
}

/// The reply to a request the worker could not even decode or look up:
/// `Reply::BadRequest(why)`, the same bytes for every `Reply<B>`.
pub(crate) fn bad_request(why: String) -> Vec<u8> {
    frame::encode(&Reply::<()>::BadRequest(why)).unwrap_or_default()
}
