//! The test harness runs a real nats-server per test: request-reply works over async-nats, a
//! payload over the server's `max_payload` is a clear client-side error, and dropping the
//! harness stops the server.

use std::time::Duration;

use bytes::Bytes;
use cat2_testkit::NatsServer;
use futures::StreamExt;

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn request_reply_over_a_real_server() {
    let server = NatsServer::start();
    let service = async_nats::connect(server.url()).await.unwrap();
    let mut sub = service.subscribe("cat2.test.echo").await.unwrap();
    service.flush().await.unwrap();
    let responder = tokio::spawn(async move {
        let msg = sub.next().await.expect("a request");
        let reply = msg.reply.expect("requests carry a reply subject");
        let mut body = b"echo: ".to_vec();
        body.extend_from_slice(&msg.payload);
        service.publish(reply, body.into()).await.unwrap();
        service.flush().await.unwrap();
    });
    let client = async_nats::connect(server.url()).await.unwrap();
    let answer = tokio::time::timeout(
        TIMEOUT,
        client.request("cat2.test.echo", Bytes::from_static(b"hi")),
    )
    .await
    .expect("answered in time")
    .unwrap();
    assert_eq!(&answer.payload[..], b"echo: hi");
    responder.await.unwrap();
    // Nobody listens here: a distinct, immediate error rather than a timeout.
    let err = client
        .request("cat2.test.nobody", Bytes::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        async_nats::RequestErrorKind::NoResponders,
        "{server:?}"
    );
}

#[tokio::test]
async fn payloads_over_max_payload_are_a_client_side_error() {
    let server = NatsServer::start_with_max_payload(64 * 1024);
    let client = async_nats::connect(server.url()).await.unwrap();
    assert_eq!(client.server_info().max_payload, 64 * 1024);
    let too_big = Bytes::from(vec![7u8; 64 * 1024 + 1]);
    let err = client
        .publish("cat2.test.big", too_big.clone())
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        async_nats::client::PublishErrorKind::MaxPayloadExceeded
    );
    assert!(err.to_string().contains("payload"), "clear message: {err}");
    // A payload at the limit goes through, and the connection stays usable.
    let mut sub = client.subscribe("cat2.test.big").await.unwrap();
    client.flush().await.unwrap();
    client
        .publish("cat2.test.big", Bytes::from(vec![1u8; 64 * 1024]))
        .await
        .unwrap();
    let got = tokio::time::timeout(TIMEOUT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.payload.len(), 64 * 1024);
}

#[tokio::test]
async fn each_test_gets_its_own_server_and_drop_stops_it() {
    let a = NatsServer::start();
    let b = NatsServer::start();
    assert_ne!(a.port(), b.port());
    let pid = a.pid();
    drop(a);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "server killed and reaped on drop"
    );
    assert!(async_nats::connect(b.url()).await.is_ok());
}

#[tokio::test]
async fn monitoring_endpoint_on_a_random_port() {
    let server = NatsServer::start_with_args(&["-m", "-1"]);
    let port = server
        .monitor_port()
        .expect("monitoring port in the ports file");
    let stream = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(stream.is_ok(), "monitoring listens on {port}");
}

#[tokio::test]
async fn the_project_config_starts_with_jetstream() {
    let server = NatsServer::start_with_project_config();
    let client = async_nats::connect(server.url()).await.unwrap();
    assert_eq!(client.server_info().max_payload, 1024 * 1024);
    let version = client.server_info().version;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    assert!(
        (major, minor) >= (2, 10),
        "nats-server >= 2.10, got {version}"
    );
    let js = async_nats::jetstream::new(client);
    let kv = js
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: "cat2-test".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    kv.put("k", Bytes::from_static(b"v")).await.unwrap();
    assert_eq!(
        kv.get("k").await.unwrap().unwrap(),
        Bytes::from_static(b"v")
    );
    assert!(server.monitor_port().is_some());
}
