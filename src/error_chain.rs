//! The innermost cause of an error chain: what a person needs to read ("Connection refused"), without
//! the wrappers each layer adds.

/// The message of the last error in `error`'s `source()` chain.
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
