//! Sanity caps on the flags that size what every connection keeps.

use super::Args;

/// The largest values of the flags that size what each connection keeps even while
/// hibernated (see `Settings::state_per_connection`): sanity caps, so that a typo cannot
/// let every connection hold megabytes. The defaults are far below.
const APP_CAPS: [(&str, u64); 4] = [
    ("--max-attachment", 1 << 20),
    ("--max-auto-responses", 64),
    ("--max-auto-response-size", 64 << 10),
    ("--max-topics", 4096),
];

pub(super) fn check_app_limits(args: &Args) -> Result<(), String> {
    let values = [
        args.max_attachment,
        u64::from(args.max_auto_responses),
        args.max_auto_response_size,
        u64::from(args.max_topics),
    ];
    for ((flag, cap), value) in APP_CAPS.iter().zip(values) {
        if value > *cap {
            return Err(format!(
                "{flag} can be at most {cap} (got {value}): each connection may keep that much, hibernated or not"
            ));
        }
    }
    Ok(())
}
