//! The write-ahead journal, `ocsh undo` and `ocsh journal` through the real binary
//! (`undo`), and faults during an apply: ocsh or the server killed (`faults`).

mod faults;
mod lab;
mod undo;

/// Every trial of the journal tests.
pub(crate) fn trials() -> Vec<libtest_mimic::Trial> {
    let mut all = undo::trials();
    all.extend(faults::trials());
    all
}
