//! The deploy files the project ships (`fly.toml`, `app.json`) deploy with
//! no hand edit: every variable they set is one the service reads, none
//! hard-codes a URL (the public URL comes from the platform), routing checks
//! ask only whether the process answers, and every provider's credential
//! can be set.

use std::path::{Path, PathBuf};

use ringrelay_server::config::variables;
use ringrelay_server::providers::PROVIDERS;
use serde_json::Value;

fn repository_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

fn fly_toml() -> toml::Table {
    std::fs::read_to_string(repository_file("fly.toml"))
        .expect("fly.toml")
        .parse()
        .expect("fly.toml is TOML")
}

fn app_json() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repository_file("app.json")).expect("app.json"))
        .expect("app.json is JSON")
}

/// The variables a deploy file sets, with their values (`None` where the
/// user is asked for one).
fn set_by(file: &str) -> Vec<(String, Option<String>)> {
    match file {
        "fly.toml" => fly_toml()["env"]
            .as_table()
            .expect("fly.toml has [env]")
            .iter()
            .map(|(name, value)| (name.clone(), value.as_str().map(str::to_owned)))
            .collect(),
        _ => app_json()["env"]
            .as_object()
            .expect("app.json has env")
            .iter()
            .map(|(name, spec)| (name.clone(), spec["value"].as_str().map(str::to_owned)))
            .collect(),
    }
}

#[test]
fn every_variable_the_deploy_files_set_is_one_the_service_reads() {
    for file in ["fly.toml", "app.json"] {
        for (name, _) in set_by(file) {
            assert!(
                variables::named(&name).is_some(),
                "{file} sets {name}, which the service does not read"
            );
        }
    }
}

#[test]
fn no_deploy_file_hard_codes_a_url() {
    for file in ["fly.toml", "app.json"] {
        for (name, value) in set_by(file) {
            assert_ne!(
                name,
                variables::PUBLIC_BASE_URL.name,
                "{file}: the platform says the public URL"
            );
            let value = value.unwrap_or_default();
            assert!(
                !value.contains("://"),
                "{file}: {name} = {value:?} is a URL"
            );
        }
    }
    // app.json asks for nothing that cannot be known before the app exists.
    for (name, spec) in app_json()["env"].as_object().unwrap() {
        assert_ne!(spec["required"], true, "app.json requires {name}");
    }
}

#[test]
fn the_deploy_files_trust_the_platforms_router() {
    for file in ["fly.toml", "app.json"] {
        let trust = set_by(file)
            .into_iter()
            .find(|(name, _)| name == variables::TRUST_PROXY.name);
        assert_eq!(
            trust.and_then(|(_, v)| v).as_deref(),
            Some("true"),
            "{file}"
        );
    }
}

#[test]
fn fly_routes_on_health_alone_and_watches_readiness_apart() {
    let fly = fly_toml();
    let routing = fly["http_service"]["checks"]
        .as_array()
        .expect("routing checks");
    assert!(!routing.is_empty());
    for check in routing {
        // /readyz is 503 while Redis is away, when the voice routes still
        // answer from what the instance last knew: they must keep coming.
        assert_eq!(check["path"].as_str(), Some("/healthz"), "{check}");
    }
    let monitoring: Vec<&str> = fly["checks"]
        .as_table()
        .expect("top-level [checks]")
        .values()
        .filter_map(|check| check["path"].as_str())
        .collect();
    assert_eq!(monitoring, ["/readyz"]);
}

#[test]
fn app_json_lets_every_provider_be_configured() {
    let set: Vec<String> = set_by("app.json")
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    for provider in PROVIDERS {
        for variable in provider.variables {
            assert!(
                set.iter().any(|name| name == variable),
                "app.json lacks {variable}"
            );
        }
    }
}
