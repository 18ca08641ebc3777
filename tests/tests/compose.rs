//! `compose.yaml` cannot run here (no Docker engine), so its contents are checked: the four
//! services, the files it mounts and builds from exist, and every flag it passes is one the
//! binary accepts; Debian's `docker-compose` (installed by scripts/setup) validates the file,
//! its profiles included, without an engine.

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
        if name.starts_with("nats") {
            assert_eq!(argv[0], "-c");
            let conf = argv[1]
                .strip_prefix("/etc/nats/")
                .expect("a config under /etc/nats");
            assert!(
                top().join("nats").join(conf).exists(),
                "{name}: nats/{conf}"
            );
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
        let url = argv
            .iter()
            .position(|a| *a == "--nats")
            .and_then(|i| argv.get(i + 1))
            .unwrap_or_else(|| panic!("{name} has no --nats"));
        for u in url.split(',') {
            let host = u.trim_start_matches("nats://").trim_end_matches(":4222");
            assert!(
                services.contains_key(host),
                "{name} talks to {host}, a NATS service"
            );
        }
    }
    let nats_image = services["nats"]["image"].as_str().unwrap();
    let tag = nats_image.split(':').nth(1).unwrap_or("latest");
    let tag = tag.split('-').next().unwrap_or(tag);
    let v: Vec<u32> = tag.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    assert!(
        tag == "latest" || (v[0], v.get(1).copied().unwrap_or(0)) >= (2, 10),
        "nats-server >= 2.10, got {nats_image}"
    );
}

#[test]
fn docker_compose_accepts_the_file_and_its_sites_profile() {
    for args in [
        &["config", "-q"][..],
        &["--profile", "sites", "config", "-q"][..],
    ] {
        let out = Command::new("docker-compose")
            .arg("-f")
            .arg(top().join("compose.yaml"))
            .args(args)
            .output()
            .expect("docker-compose (Debian's package: run scripts/setup)");
        assert!(
            out.status.success(),
            "docker-compose {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
