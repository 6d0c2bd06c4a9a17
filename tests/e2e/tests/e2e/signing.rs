//! Plugin signatures and the trust policy: valid, tampered, wrong key, unsigned in strict and
//! in allow-unsigned mode; verification happens before the library is mapped.

use passerelle_e2e::{library_file_name, TestEnv};

/// A host whose host.toml trusts a fresh publisher key; returns the key file.
fn strict_env() -> (TestEnv, std::path::PathBuf) {
    let env = TestEnv::new();
    let keys = env.root.path().join("keys");
    let out = env.ok(&[
        "plugin",
        "keygen",
        "--out",
        keys.to_str().unwrap(),
        "--name",
        "acme",
    ]);
    let public = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("public key:"))
        .unwrap()
        .trim()
        .to_owned();
    env.write_host_toml(&format!(
        "[plugins]\npolicy = \"strict\"\ntrusted_keys = [\"{public}\"]\n"
    ));
    (env, keys.join("acme.key"))
}

fn listing(env: &TestEnv) -> serde_json::Value {
    env.ok(&["plugins", "--json"]).json()
}

fn reason_for(listing: &serde_json::Value, file: &str) -> String {
    listing["refused"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"].as_str().unwrap().ends_with(file))
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("{file} not refused: {listing:#}"))
}

#[test]
fn signed_plugins_load_and_tampered_unknown_or_unsigned_ones_do_not() {
    let (env, key) = strict_env();
    let lib = env.add_plugin("passerelle_sirene");
    env.ok(&[
        "plugin",
        "sign",
        lib.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ])
    .expect_output("signed")
    .expect_output("as sirene");
    let l = listing(&env);
    assert_eq!(l["plugins"][0]["id"], "sirene", "{l:#}");
    assert!(l["plugins"][0]["signed_by"]
        .as_str()
        .unwrap()
        .starts_with("ed25519:"));
    env.ok(&["plugin", "verify", lib.to_str().unwrap()])
        .expect_output("signed as sirene");

    // One byte changed after signing.
    let mut bytes = std::fs::read(&lib).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&lib, &bytes).unwrap();
    let r = reason_for(&listing(&env), &library_file_name("passerelle_sirene"));
    assert!(r.contains("changed after signing"), "{r}");
    env.run(&["plugin", "verify", lib.to_str().unwrap()])
        .expect_code(3);

    // Signed by a key the host does not trust.
    std::fs::remove_file(&lib).unwrap();
    let lib = env.add_plugin("passerelle_sirene");
    let other = env.root.path().join("other");
    env.ok(&["plugin", "keygen", "--out", other.to_str().unwrap()]);
    env.ok(&[
        "plugin",
        "sign",
        lib.to_str().unwrap(),
        "--key",
        other.join("publisher.key").to_str().unwrap(),
    ]);
    let r = reason_for(&listing(&env), &library_file_name("passerelle_sirene"));
    assert!(r.contains("not a trusted publisher key"), "{r}");

    // Unsigned: refused in strict mode, loaded (loudly) in allow-unsigned mode.
    std::fs::remove_file(format!("{}.sig", lib.display())).unwrap();
    let r = reason_for(&listing(&env), &library_file_name("passerelle_sirene"));
    assert!(
        r.contains("not signed") && r.contains("passerelle plugin sign"),
        "{r}"
    );
    let dev = env.ok(&["--plugin-policy", "allow-unsigned", "plugins", "--json"]);
    assert_eq!(dev.json()["plugins"][0]["id"], "sirene");
    assert!(
        dev.stderr.contains("UNSIGNED plugin loaded"),
        "{}",
        dev.stderr
    );
}

#[test]
fn the_signature_is_checked_before_the_library_is_mapped() {
    let (env, key) = strict_env();
    let lib = env.add_plugin("passerelle_sirene");
    env.ok(&[
        "plugin",
        "sign",
        lib.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    // Replace the library with garbage but keep its signature: a loader that mapped first
    // would report "not a loadable library"; ours refuses on the signature.
    std::fs::write(&lib, b"garbage that would crash a careless loader").unwrap();
    let r = reason_for(&listing(&env), &library_file_name("passerelle_sirene"));
    assert!(r.contains("does not match its signature"), "{r}");
}

/// Changes `file` in place, keeping its size and modification time: only its inode change
/// time tells (what a careful tamperer or a same-second rebuild leaves).
fn flip_byte_keeping_mtime(file: &std::path::Path) {
    let mtime = std::fs::metadata(file).unwrap().modified().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = std::fs::read(file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(file, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

#[test]
fn verified_plugins_are_not_hashed_again_until_they_change() {
    let (env, key) = strict_env();
    let lib = env.add_plugin("passerelle_sirene");
    env.ok(&[
        "plugin",
        "sign",
        lib.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    // Files changed in the last two seconds are never remembered (they could still change
    // within the same clock tick).
    std::thread::sleep(passerelle::verified::SETTLE + std::time::Duration::from_millis(200));
    assert_eq!(listing(&env)["plugins"][0]["id"], "sirene");
    let index_file = env.data.join("plugin-cache/verified.json");
    let index = std::fs::read_to_string(&index_file).unwrap();
    assert!(index.contains(lib.to_str().unwrap()), "{index}");
    // The cache copy was just written: remembered at the next start, once settled.
    std::thread::sleep(passerelle::verified::SETTLE + std::time::Duration::from_millis(200));
    assert_eq!(listing(&env)["plugins"][0]["id"], "sirene");
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&index_file).unwrap()).unwrap();
    let copies: Vec<_> = index["files"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.contains("plugin-cache"))
        .cloned()
        .collect();
    assert_eq!(copies.len(), 1, "{index:#}");

    // The cache copy changed behind the host's back, size and mtime kept: replaced, the
    // plugin still loads from the verified bytes.
    let copy = std::path::PathBuf::from(&copies[0]);
    let original = std::fs::read(&lib).unwrap();
    flip_byte_keeping_mtime(&copy);
    let run = env.ok(&["plugins", "--json"]);
    assert_eq!(run.json()["plugins"][0]["id"], "sirene", "{}", run.stderr);
    assert!(
        run.stderr.contains("cached plugin copy was changed"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read(&copy).unwrap(), original);

    // The library itself changed the same way: hashed again, refused on its signature.
    flip_byte_keeping_mtime(&lib);
    let r = reason_for(&listing(&env), &library_file_name("passerelle_sirene"));
    assert!(r.contains("changed after signing"), "{r}");
}

#[test]
fn allow_unsigned_mode_honours_its_allow_list() {
    let env = TestEnv::with_plugins(&["passerelle_sirene", "fixture_panic_on_call"]);
    env.write_host_toml("[plugins]\npolicy = \"allow-unsigned\"\nallow_unsigned = [\"sirene\"]\n");
    let l = listing(&env);
    assert_eq!(l["plugins"].as_array().unwrap().len(), 1, "{l:#}");
    let r = reason_for(&l, &library_file_name("fixture_panic_on_call"));
    assert!(r.contains("not in the allow_unsigned list"), "{r}");
}
