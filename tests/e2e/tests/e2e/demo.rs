//! `examples/demo.toml` is valid and gives a green test for every bundled plugin against the
//! emulators — what a newcomer sees without any provider account.

use passerelle_e2e::TestEnv;
use passerelle_emulators::chorus_pro::{ChorusProEmulator, ChorusProOptions};
use passerelle_emulators::ews::{EwsEmulator, EwsOptions};
use passerelle_emulators::graph::{GraphEmulator, GraphOptions};
use passerelle_emulators::mindee::{MindeeEmulator, MindeeOptions};
use passerelle_emulators::sirene::{SireneEmulator, SireneOptions};
use passerelle_emulators::universign::{UniversignEmulator, UniversignOptions};

#[test]
fn the_demo_provisioning_file_gives_a_green_test_for_every_plugin() {
    let sirene = SireneEmulator::start(SireneOptions::default()).unwrap();
    let mindee = MindeeEmulator::start(MindeeOptions::default()).unwrap();
    let chorus = ChorusProEmulator::start(ChorusProOptions::default()).unwrap();
    let universign = UniversignEmulator::start(UniversignOptions::default()).unwrap();
    let ews = EwsEmulator::start(EwsOptions::default()).unwrap();
    let graph = GraphEmulator::start(GraphOptions::default()).unwrap();
    let demo = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo.toml"),
    )
    .unwrap();
    // The demo's fixed ports become the ports these emulators got.
    let demo = demo
        .replace("http://127.0.0.1:18081", &sirene.url())
        .replace("http://127.0.0.1:18082", &mindee.url())
        .replace("http://127.0.0.1:18083", &chorus.url())
        .replace("http://127.0.0.1:18084", &universign.root_url())
        .replace("http://127.0.0.1:18085", &ews.url())
        .replace("http://127.0.0.1:18086", &graph.url());
    let env = TestEnv::with_plugins(&[
        "passerelle_sirene",
        "passerelle_ocr_mindee",
        "passerelle_chorus_pro",
        "passerelle_universign",
        "passerelle_exchange_ews",
        "passerelle_calendar_graph",
    ]);
    let file = env.root.path().join("demo.toml");
    std::fs::write(&file, demo).unwrap();
    env.ok(&["config", "apply", file.to_str().unwrap()]);
    for id in [
        "demo-sirene",
        "demo-mindee",
        "demo-chorus",
        "demo-universign",
        "demo-exchange",
        "demo-calendar-graph",
    ] {
        let report = env.run(&["test", id, "--json"]).json();
        assert_ne!(report["status"], "failed", "{id}: {report:#}");
    }
    assert!(
        !env.data_dump().contains("piste-client-secret"),
        "a demo secret is stored in clear"
    );
}
