//! `compose.yaml` cannot run here (no Docker engine), so its contents are checked: the four
//! services, the files it mounts and builds from exist, and every flag it passes is one the
//! binary accepts.

use std::path::Path;
use std::process::Command;

fn top() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn compose_file_is_consistent_with_the_project() {
    let python = cat2_testkit::tools::python().unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(top().join("compose.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services = c["services"].as_object().unwrap();
    for s in ["nats", "broker", "publisher", "subscriber"] {
        assert!(services.contains_key(s), "service {s}");
    }
    assert!(top().join("Dockerfile").exists());
    for (name, svc) in services {
        for v in svc["volumes"].as_array().into_iter().flatten() {
            let host = v.as_str().unwrap().split(':').next().unwrap();
            if host.starts_with("./") {
                assert!(
                    top().join(host).exists(),
                    "{name} mounts {host}, which must exist"
                );
            }
        }
        let Some(cmd) = svc["command"].as_array() else {
            continue;
        };
        let argv: Vec<&str> = cmd.iter().map(|a| a.as_str().unwrap()).collect();
        if name == "nats" {
            assert_eq!(argv[..2], ["-c", "/etc/nats/nats-server.conf"]);
            continue;
        }
        let help = Command::new(cat2_e2e::cluster::bin(argv[0]))
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in argv.iter().filter(|a| a.starts_with("--")) {
            assert!(help.contains(flag), "{name}: {} has no {flag}", argv[0]);
        }
        assert!(
            argv.contains(&"nats://nats:4222"),
            "{name} talks to the nats service"
        );
    }
    let nats_image = services["nats"]["image"].as_str().unwrap();
    let tag = nats_image.split(':').nth(1).unwrap_or("latest");
    let v: Vec<u32> = tag.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    assert!(
        tag == "latest" || (v[0], v.get(1).copied().unwrap_or(0)) >= (2, 10),
        "nats-server >= 2.10, got {nats_image}"
    );
}
