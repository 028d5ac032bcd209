//! Every connection gets a fresh instance: what a guest leaves in one connection's instance
//! (a global, its heap) is never seen by another connection's, nor by the same connection's
//! next instance after hibernation. Whatever makes instances cheaper (pooling, memory
//! images, reuse of freed slots) must keep this.

mod common;

use common::Runner;

#[test]
fn no_connection_sees_what_another_left_in_its_instance() {
    let runner = Runner::with_test_handler(&[]);
    let mut a = runner.connect("/count");
    // A global (`instance=`) and the heap (`notes`) grow within one instance.
    assert_eq!(a.ask("x"), "instance=1 attachment=1");
    assert_eq!(a.ask("x"), "instance=2 attachment=2");
    assert_eq!(a.ask("note secret-of-a"), "notes secret-of-a");
    // Another connection, while `a` is live, and then many after it closed (their instances
    // take slots `a`'s and each other's freed).
    let mut b = runner.connect("/count");
    assert_eq!(b.ask("x"), "instance=1 attachment=1");
    assert_eq!(b.ask("note b"), "notes b");
    drop(a);
    drop(b);
    for i in 0..20 {
        let mut next = runner.connect("/count");
        assert_eq!(next.ask("x"), "instance=1 attachment=1", "connection {i}");
        assert_eq!(
            next.ask(&format!("note {i}")),
            format!("notes {i}"),
            "connection {i}"
        );
    }
}

#[test]
fn a_woken_connection_gets_a_fresh_instance() {
    let runner = Runner::with_test_handler(&["--hibernate-after", "0"]);
    let mut a = runner.connect("/count");
    // Each call is a fresh instance: only the attachment (the host's) carries over.
    assert_eq!(a.ask("note one"), "notes one");
    assert_eq!(a.ask("note two"), "notes two");
    assert_eq!(a.ask("x"), "instance=1 attachment=1");
    assert_eq!(a.ask("x"), "instance=1 attachment=2");
}
