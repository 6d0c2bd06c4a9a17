//! `passerelle plugin new`: the partner kit's starting point. It writes an out-of-tree
//! plugin crate that builds, loads into a host and passes its own tests as generated: a
//! `Cargo.toml` depending on `passerelle-plugin-api`, a configuration struct following the
//! schema conventions, a test routine, one capability of the chosen category, and unit
//! tests that run the plugin in-process against a scripted host (feature `testing`).
//!
//! The templates live in `host/templates/plugin/` and are compiled into the binary, so the
//! command works from an installed host. `passerelle-plugin-api` is not on crates.io: the
//! generated crate depends on it by path, by default the `plugin-api/` folder of the source
//! tree this host was built from (known at build time), or `--api-path`. When that tree has
//! a `Cargo.lock`, it is copied into the new crate, so that the plugin starts from the
//! dependency versions the host was built and tested with.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where this host's plugin API sources were at build time.
pub const BUILD_API_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugin-api");
/// Where the guide was at build time.
const BUILD_GUIDE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/writing-a-plugin.md");

const CARGO_TOML: &str = include_str!("../templates/plugin/Cargo.toml.tmpl");
const README: &str = include_str!("../templates/plugin/README.md.tmpl");
const GITIGNORE: &str = include_str!("../templates/plugin/gitignore.tmpl");
const LIB_RS: &str = include_str!("../templates/plugin/lib.rs.tmpl");
const CONFIG_RS: &str = include_str!("../templates/plugin/config.rs.tmpl");
const CLIENT_RS: &str = include_str!("../templates/plugin/client.rs.tmpl");
const TESTS_RS: &str = include_str!("../templates/plugin/tests.rs.tmpl");

/// The category of the plugin, which decides the capability it is generated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Category {
    /// `ocr.expense_receipt`
    Ocr,
    /// `company.lookup`
    Company,
    /// `calendar.sync`
    Calendar,
    /// `einvoice.status`
    Einvoice,
    /// `esign.status`
    Esign,
    /// an operation of the plugin's own, `other.status`
    Other,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::Ocr,
        Category::Company,
        Category::Calendar,
        Category::Einvoice,
        Category::Esign,
        Category::Other,
    ];

    /// The name on the command line and in manifests, e.g. `einvoice`.
    pub fn name(self) -> &'static str {
        match self {
            Category::Ocr => "ocr",
            Category::Company => "company",
            Category::Calendar => "calendar",
            Category::Einvoice => "einvoice",
            Category::Esign => "esign",
            Category::Other => "other",
        }
    }

    /// The variant of `passerelle_plugin_api::Category`.
    fn variant(self) -> &'static str {
        match self {
            Category::Ocr => "Ocr",
            Category::Company => "Company",
            Category::Calendar => "Calendar",
            Category::Einvoice => "Einvoice",
            Category::Esign => "Esign",
            Category::Other => "Other",
        }
    }

    /// The operation the generated plugin serves.
    pub fn operation(self) -> &'static str {
        match self {
            Category::Ocr => "ocr.expense_receipt",
            Category::Company => "company.lookup",
            Category::Calendar => "calendar.sync",
            Category::Einvoice => "einvoice.status",
            Category::Esign => "esign.status",
            Category::Other => "other.status",
        }
    }

    /// The capability module and its unit test.
    fn templates(self) -> (&'static str, &'static str) {
        match self {
            Category::Ocr => (
                include_str!("../templates/plugin/capability/ocr.rs.tmpl"),
                include_str!("../templates/plugin/capability/ocr.test.rs.tmpl"),
            ),
            Category::Company => (
                include_str!("../templates/plugin/capability/company.rs.tmpl"),
                include_str!("../templates/plugin/capability/company.test.rs.tmpl"),
            ),
            Category::Calendar => (
                include_str!("../templates/plugin/capability/calendar.rs.tmpl"),
                include_str!("../templates/plugin/capability/calendar.test.rs.tmpl"),
            ),
            Category::Einvoice => (
                include_str!("../templates/plugin/capability/einvoice.rs.tmpl"),
                include_str!("../templates/plugin/capability/einvoice.test.rs.tmpl"),
            ),
            Category::Esign => (
                include_str!("../templates/plugin/capability/esign.rs.tmpl"),
                include_str!("../templates/plugin/capability/esign.test.rs.tmpl"),
            ),
            Category::Other => (
                include_str!("../templates/plugin/capability/other.rs.tmpl"),
                include_str!("../templates/plugin/capability/other.test.rs.tmpl"),
            ),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// The plugin id, e.g. `acme-registry`; also the crate's folder name.
    pub name: String,
    pub category: Category,
    /// The folder in which the crate's folder is created.
    pub dir: PathBuf,
    /// The `plugin-api` folder of a Passerelle source tree; default [`BUILD_API_PATH`].
    pub api_path: Option<PathBuf>,
}

/// Why nothing was generated.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "plugin name {0:?} is invalid: expected 1 to 64 lowercase letters, digits and single \
         '-', starting with a letter and not ending with '-', e.g. acme-registry"
    )]
    InvalidName(String),
    #[error("{} already exists and is not empty: choose another name or another --dir", .0.display())]
    Exists(PathBuf),
    #[error(
        "{} is not the plugin API crate ({reason}): pass --api-path <passerelle source tree>/plugin-api",
        .path.display()
    )]
    NotApi { path: PathBuf, reason: String },
    #[error(
        "the plugin API sources are not at {}, where this passerelle was built: pass --api-path \
         <passerelle source tree>/plugin-api",
        .0.display()
    )]
    NoDefaultApi(PathBuf),
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct Scaffolded {
    /// The crate's folder.
    pub dir: PathBuf,
    pub id: String,
    /// The Cargo package, `passerelle-<id>`.
    pub package: String,
    /// The library file `cargo build` makes, e.g. `libpasserelle_acme_registry.so`.
    pub library_file: String,
    pub operation: &'static str,
    /// The plugin API crate the crate depends on, absolute.
    pub api_path: PathBuf,
    /// Whether the source tree's `Cargo.lock` was copied.
    pub lock_copied: bool,
    /// Files written, relative to [`Scaffolded::dir`].
    pub files: Vec<PathBuf>,
}

impl fmt::Display for Scaffolded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "created {} ({}, plugin `{}` serving {})",
            self.dir.display(),
            self.package,
            self.id,
            self.operation
        )?;
        for file in &self.files {
            writeln!(f, "  {}", file.display())?;
        }
        writeln!(
            f,
            "plugin API: {}{}",
            self.api_path.display(),
            if self.lock_copied {
                " (its Cargo.lock copied)"
            } else {
                ""
            }
        )?;
        writeln!(f, "\nNext:")?;
        writeln!(f, "  cd {}", self.dir.display())?;
        writeln!(f, "  cargo test")?;
        writeln!(f, "  cargo build --release")?;
        writeln!(
            f,
            "  cp target/release/{} <plugin-dir>/ && passerelle --plugin-dir <plugin-dir> schema {}",
            self.library_file, self.id
        )?;
        write!(f, "See README.md, and the guide: {}", guide_reference())
    }
}

/// Whether `name` can be a plugin id and a Cargo package name.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `acme-registry` → `AcmeRegistry`.
fn struct_name(id: &str) -> String {
    id.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// `acme-registry` → `Acme Registry`.
fn title(id: &str) -> String {
    id.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A path inside a TOML basic string.
fn toml_string(path: &Path) -> String {
    path.to_string_lossy()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

fn guide_reference() -> String {
    let built = Path::new(BUILD_GUIDE_PATH);
    match std::fs::canonicalize(built) {
        Ok(path) => path.display().to_string(),
        Err(_) => "docs/writing-a-plugin.md in Passerelle's source tree".to_owned(),
    }
}

/// Checks that `path` is the `passerelle-plugin-api` crate; returns it absolute.
pub fn check_api_path(path: &Path) -> Result<PathBuf, ScaffoldError> {
    let not_api = |reason: String| ScaffoldError::NotApi {
        path: path.to_owned(),
        reason,
    };
    let absolute = std::fs::canonicalize(path).map_err(|e| not_api(e.to_string()))?;
    let manifest = std::fs::read_to_string(absolute.join("Cargo.toml"))
        .map_err(|e| not_api(format!("no readable Cargo.toml: {e}")))?;
    let package: toml::Value =
        toml::from_str(&manifest).map_err(|e| not_api(format!("Cargo.toml is not TOML: {e}")))?;
    let name = package
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(toml::Value::as_str);
    if name != Some("passerelle-plugin-api") {
        return Err(not_api(format!(
            "its Cargo.toml names the package {:?}",
            name.unwrap_or("(none)")
        )));
    }
    Ok(absolute)
}

/// The API path to use: `--api-path`, else the build-time one when it still exists.
fn resolve_api_path(given: Option<&Path>) -> Result<PathBuf, ScaffoldError> {
    match given {
        Some(path) => check_api_path(path),
        None => {
            let built = Path::new(BUILD_API_PATH);
            if !built.exists() {
                return Err(ScaffoldError::NoDefaultApi(built.to_owned()));
            }
            check_api_path(built)
        }
    }
}

/// The files of the crate, relative paths and contents; no I/O.
pub fn render(
    id: &str,
    category: Category,
    api_path: &Path,
    lock_copied: bool,
    default_api: bool,
) -> Vec<(PathBuf, String)> {
    let package = if id.starts_with("passerelle-") {
        id.to_owned()
    } else {
        format!("passerelle-{id}")
    };
    let lib = package.replace('-', "_");
    let library_file = format!(
        "{}{lib}.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    );
    let api_source = if default_api {
        format!(
            "The plugin API is the one of the Passerelle source tree that built `passerelle` {} \
             (found at build time)",
            env!("CARGO_PKG_VERSION")
        )
    } else {
        "The plugin API is the one given to `passerelle plugin new --api-path`".to_owned()
    };
    let lock_note = if lock_copied {
        "\n`Cargo.lock` was copied from that source tree, so that the plugin starts from the \
         dependency versions the host was built and tested with; `cargo update` moves on from \
         them.\n"
    } else {
        ""
    };
    let struct_name = struct_name(id);
    let title = title(id);
    let fill = |template: &str| {
        template
            .replace("{{id}}", id)
            .replace("{{package}}", &package)
            .replace("{{lib}}", &lib)
            .replace("{{library_file}}", &library_file)
            .replace("{{Struct}}", &struct_name)
            .replace("{{title}}", &title)
            .replace("{{category}}", category.name())
            .replace("{{Category}}", category.variant())
            .replace("{{operation}}", category.operation())
            .replace("{{api_path}}", &toml_string(api_path))
            .replace("{{api_source}}", &api_source)
            .replace("{{lock_note}}", lock_note)
            .replace("{{guide}}", &guide_reference())
            .replace("{{passerelle_version}}", env!("CARGO_PKG_VERSION"))
            .replace(
                "{{plugin_api_version}}",
                passerelle_plugin_api::PLUGIN_API_VERSION,
            )
    };
    let (capability, capability_test) = category.templates();
    vec![
        (PathBuf::from("Cargo.toml"), fill(CARGO_TOML)),
        (PathBuf::from("README.md"), fill(README)),
        (PathBuf::from(".gitignore"), fill(GITIGNORE)),
        (PathBuf::from("src/lib.rs"), fill(LIB_RS)),
        (PathBuf::from("src/config.rs"), fill(CONFIG_RS)),
        (PathBuf::from("src/client.rs"), fill(CLIENT_RS)),
        (PathBuf::from("src/capability.rs"), fill(capability)),
        (
            PathBuf::from("tests/plugin.rs"),
            fill(&format!("{TESTS_RS}{capability_test}")),
        ),
    ]
}

/// Writes the crate into `<dir>/<name>`.
pub fn scaffold(options: &Options) -> Result<Scaffolded, ScaffoldError> {
    let id = options.name.trim();
    if !valid_name(id) {
        return Err(ScaffoldError::InvalidName(options.name.clone()));
    }
    let api_path = resolve_api_path(options.api_path.as_deref())?;
    let dir = options.dir.join(id);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ScaffoldError::Io { path, source }
    };
    if dir.exists() {
        let empty = std::fs::read_dir(&dir).map_err(io(&dir))?.next().is_none();
        if !empty {
            return Err(ScaffoldError::Exists(dir));
        }
    }
    let lock = api_path.parent().map(|tree| tree.join("Cargo.lock"));
    let lock = lock.filter(|l| l.is_file());
    let files = render(
        id,
        options.category,
        &api_path,
        lock.is_some(),
        options.api_path.is_none(),
    );
    let mut written = Vec::new();
    for (relative, content) in &files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&path, content).map_err(io(&path))?;
        written.push(relative.clone());
    }
    if let Some(lock) = &lock {
        let target = dir.join("Cargo.lock");
        std::fs::copy(lock, &target).map_err(io(&target))?;
        written.push(PathBuf::from("Cargo.lock"));
    }
    let package = if id.starts_with("passerelle-") {
        id.to_owned()
    } else {
        format!("passerelle-{id}")
    };
    Ok(Scaffolded {
        library_file: format!(
            "{}{}.{}",
            std::env::consts::DLL_PREFIX,
            package.replace('-', "_"),
            std::env::consts::DLL_EXTENSION
        ),
        dir,
        id: id.to_owned(),
        package,
        operation: options.category.operation(),
        api_path,
        lock_copied: lock.is_some(),
        files: written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plugin_ids_and_package_names() {
        for ok in ["acme", "acme-registry", "ocr2", "a"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "", "Acme", "2acme", "-acme", "acme-", "ac--me", "ac_me", "ac me",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(!valid_name(&"a".repeat(65)));
        assert_eq!(struct_name("acme-registry2"), "AcmeRegistry2");
        assert_eq!(title("acme-registry"), "Acme Registry");
    }

    #[test]
    fn every_template_is_filled() {
        let api = Path::new("/opt/passerelle/plugin-api");
        for category in Category::ALL {
            let files = render("acme-registry", category, api, true, true);
            for (path, content) in &files {
                assert!(
                    !content.contains("{{"),
                    "{category:?} {}: {}",
                    path.display(),
                    content
                        .lines()
                        .find(|l| l.contains("{{"))
                        .unwrap_or_default()
                );
            }
            let cargo: toml::Value = toml::from_str(&files[0].1).unwrap();
            assert_eq!(
                cargo["package"]["name"].as_str(),
                Some("passerelle-acme-registry")
            );
            assert_eq!(
                cargo["dependencies"]["passerelle-plugin-api"]["path"].as_str(),
                Some("/opt/passerelle/plugin-api")
            );
            assert_eq!(
                cargo["dev-dependencies"]["passerelle-plugin-api"]["features"][0].as_str(),
                Some("testing")
            );
            assert!(cargo.get("workspace").is_some(), "a workspace of its own");
            let lib = &files[3].1;
            assert!(lib.contains("Category::"), "{lib}");
            assert!(lib.contains("export_plugin!(AcmeRegistry);"));
            let tests = &files[7].1;
            assert!(tests.contains(&format!("[\"{}\"]", category.operation())));
            let readme = &files[1].1;
            assert!(readme.contains("libpasserelle_acme_registry") || cfg!(not(unix)));
            assert!(readme.contains("Cargo.lock"));
        }
    }

    #[test]
    fn the_crate_is_written_once_and_not_over_existing_work() {
        let tmp = tempfile::tempdir().unwrap();
        let options = Options {
            name: "acme".into(),
            category: Category::Company,
            dir: tmp.path().to_owned(),
            api_path: Some(PathBuf::from(BUILD_API_PATH)),
        };
        let done = scaffold(&options).unwrap();
        assert_eq!(done.dir, tmp.path().join("acme"));
        assert_eq!(done.operation, "company.lookup");
        for file in [
            "Cargo.toml",
            "src/lib.rs",
            "src/capability.rs",
            "tests/plugin.rs",
        ] {
            assert!(done.dir.join(file).is_file(), "{file}");
        }
        assert!(done.api_path.is_absolute());
        assert!(done.to_string().contains("cargo build --release"));
        assert!(matches!(
            scaffold(&options).unwrap_err(),
            ScaffoldError::Exists(_)
        ));
    }

    #[test]
    fn a_wrong_api_path_or_name_is_refused_before_writing() {
        let tmp = tempfile::tempdir().unwrap();
        let mut options = Options {
            name: "acme".into(),
            category: Category::Other,
            dir: tmp.path().to_owned(),
            api_path: Some(tmp.path().to_owned()),
        };
        let e = scaffold(&options).unwrap_err();
        assert!(matches!(e, ScaffoldError::NotApi { .. }), "{e}");
        assert!(e.to_string().contains("--api-path"));
        // The host's own crate is not the API crate either.
        options.api_path = Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let e = scaffold(&options).unwrap_err();
        assert!(e.to_string().contains("\"passerelle\""), "{e}");
        options.api_path = None;
        options.name = "Acme".into();
        assert!(matches!(
            scaffold(&options).unwrap_err(),
            ScaffoldError::InvalidName(_)
        ));
        assert!(std::fs::read_dir(tmp.path()).unwrap().next().is_none());
    }
}
