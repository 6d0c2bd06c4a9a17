//! The console in the browser's language: negotiation, the remembered choice, French
//! refusals, dates and numbers.

use super::*;

impl Harness {
    /// A console GET with extra headers (language negotiation).
    pub(super) async fn page_with(
        &self,
        s: &Session,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = Request::get(path)
            .header("cookie", &s.cookie)
            .header("host", HOST);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }
}

#[tokio::test]
async fn the_console_speaks_the_browsers_language_and_remembers_a_chosen_one() {
    let h = Harness::new();
    h.create_demo("d").await;
    // The sign-in page follows Accept-Language.
    let login = h
        .send(
            Request::get("/login")
                .header("accept-language", "fr-FR,fr;q=0.9,en;q=0.5")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .expect(StatusCode::OK);
    assert!(login.body.contains("<html lang=\"fr\">"), "{}", login.body);
    assert!(login
        .body
        .contains("<label for=\"username\">Nom d&#39;utilisateur</label>"));
    assert!(login.body.contains(">Se connecter</button>"));
    let s = h.login().await;
    let fr = h
        .page_with(&s, "/instances/d", &[("accept-language", "fr")])
        .await
        .expect(StatusCode::OK)
        .body;
    assert!(fr.contains("<html lang=\"fr\">"));
    for text in [
        ">Enregistrer<span class=\"visually-hidden\">",
        ">Revenir à la valeur par défaut<",
        "<a href=\"/audit\">Historique</a>",
        ">Désactivée</span>",
        ">Tester</button>",
        "data-t-saved=\"Enregistré.\"",
        "<a href=\"/instances/d?lang=en\" lang=\"en\" hreflang=\"en\">English</a>",
    ] {
        assert!(fr.contains(text), "{text} missing from the French page");
    }
    // Schema titles stay as the schema gives them.
    assert!(fr.contains("<legend>Authentication</legend>"));
    // English when the browser prefers a language the console does not speak.
    let en = h
        .page_with(&s, "/instances/d", &[("accept-language", "de, en;q=0.1")])
        .await
        .expect(StatusCode::OK);
    assert!(en.body.contains("<html lang=\"en\">") && en.body.contains(">Save<span"));
    // `?lang=` wins over the browser and is remembered in a cookie...
    let chosen = h
        .page_with(
            &s,
            "/audit?instance=d&lang=en",
            &[("accept-language", "fr")],
        )
        .await
        .expect(StatusCode::OK);
    assert!(chosen.body.contains("<h1>Audit history</h1>"));
    assert!(chosen
        .body
        .contains("href=\"/audit?instance=d&amp;lang=fr\" lang=\"fr\""));
    let set = chosen.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("passerelle_lang=en;")
            && set.contains("Max-Age=")
            && set.contains("Path=/"),
        "{set}"
    );
    // ...which then wins over the browser.
    let remembered = Session {
        cookie: format!("{}; passerelle_lang=fr", s.cookie),
        csrf: s.csrf.clone(),
    };
    let page = h
        .page_with(&remembered, "/plugins", &[("accept-language", "en")])
        .await
        .expect(StatusCode::OK);
    assert!(
        page.body.contains("<h1>Plugins</h1>")
            && page.body.contains("<caption>Plugins chargés</caption>")
    );
    assert!(page.headers.get("set-cookie").is_none());
    // Pages outside the console's routes follow the cookie too.
    let missing = h
        .page_with(&remembered, "/nowhere", &[])
        .await
        .expect(StatusCode::NOT_FOUND);
    assert!(missing.body.contains("<h1>Page introuvable</h1>"));
}

#[tokio::test]
async fn refusals_dates_and_numbers_are_french_on_a_french_page() {
    let h = Harness::new();
    h.create_demo("d").await;
    let s = h.login().await;
    let s = Session {
        cookie: format!("{}; passerelle_lang=fr", s.cookie),
        csrf: s.csrf,
    };
    let form = |v: &str| format!("_csrf={}&value={v}&op=save", enc(&s.csrf));
    // Without the script: the page again, the message next to the field.
    let page = h
        .page(
            &s,
            "POST",
            "/instances/d/fields/timeout_secs",
            Some(&form("500")),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .body;
    let block = field_block(&page, "timeout_secs");
    assert!(
        block.contains("500 est supérieur au maximum de 120"),
        "{block}"
    );
    let page = h
        .page(
            &s,
            "POST",
            "/instances/d/fields/timeout_secs",
            Some(&form("abc")),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY)
        .body;
    assert!(
        field_block(&page, "timeout_secs")
            .contains("un nombre entier est attendu, reçu &quot;abc&quot;"),
        "{page}"
    );
    // With the script: JSON whose message is French.
    let answer = h
        .send(
            Request::post("/instances/d/fields/timeout_secs")
                .header("cookie", &s.cookie)
                .header("host", HOST)
                .header("origin", ORIGIN)
                .header("x-requested-with", "passerelle-console")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form("0")))
                .unwrap(),
        )
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.json()["message"], "0 est inférieur au minimum de 1");
    assert_eq!(answer.json()["code"], "invalid_value");
    // Enabling an incomplete configuration: every problem in French.
    let page = h
        .page(
            &s,
            "POST",
            "/instances/d/enable",
            Some(&format!("_csrf={}", enc(&s.csrf))),
        )
        .await
        .body;
    assert!(page.contains("<h2>À corriger d&#39;abord</h2>"), "{page}");
    assert!(page.contains("ce champ est obligatoire"), "{page}");
    // A saved value and the history, with a French date.
    h.page(
        &s,
        "POST",
        "/instances/d/fields/timeout_secs",
        Some(&form("12")),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    let audit = h
        .page(&s, "GET", "/audit", None)
        .await
        .expect(StatusCode::OK)
        .body;
    let now = crate::services::state::now_ms();
    let today = super::l10n::date_time(now, super::i18n::Lang::Fr);
    let day_month_year = today.split(',').next().unwrap();
    assert!(
        [
            "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
            "nov.", "déc."
        ]
        .iter()
        .any(|m| day_month_year.contains(m)),
        "{today}"
    );
    assert!(
        audit.contains(day_month_year),
        "{day_month_year} not in {audit}"
    );
    assert!(audit.contains("<time datetime=\""), "{audit}");
    assert!(audit.contains("<th scope=\"col\">Auteur</th>"));
}
