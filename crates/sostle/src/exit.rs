//! Exit statuses are API (SPEC §13, as conftest): one table, used by every command.

use crate::check::Summary;

/// Nothing failed (warnings allowed); the command did its job.
pub const OK: u8 = 0;
/// A failure: a policy failed (or, with `--fail-on-warn`, only warnings did), or the command
/// refused (a trial that is not locked, a refused spawn, lock or promotion, a refused token).
pub const FAIL: u8 = 1;
/// With `--fail-on-warn`: failures (1 then means warnings only).
pub const FAIL_WITH_WARN: u8 = 2;
/// The run itself had an error: an input that could not be read or parsed, a bad config, a
/// bad flag — after everything else was still checked and reported.
pub const ERROR: u8 = 3;

/// The status of a `sostle test` run: an error first, then failures, then (with
/// `--fail-on-warn`) warnings or warning exemptions.
pub fn of_test(s: &Summary, warning_exemptions: usize, fail_on_warn: bool) -> u8 {
    if s.errors > 0 {
        ERROR
    } else if s.fail > 0 {
        if fail_on_warn {
            FAIL_WITH_WARN
        } else {
            FAIL
        }
    } else if fail_on_warn && (s.warn > 0 || warning_exemptions > 0) {
        FAIL
    } else {
        OK
    }
}
