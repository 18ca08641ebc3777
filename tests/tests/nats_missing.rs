//! A missing nats-server fails the test with an install hint.

#[test]
#[should_panic(expected = "scripts/setup")]
fn missing_binary_fails_with_an_install_hint() {
    let _ = cat2_testkit::NatsServer::start_with_binary(
        std::path::Path::new("/nonexistent/nats-server"),
        &[],
    );
}
