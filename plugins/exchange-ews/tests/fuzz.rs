//! Fuzzing of what an Exchange server sends back (issue 19): the SOAP reader, the calendar
//! view and written-item readers, and the `xs:dateTime` reader, fed with recorded EWS answers
//! mutated by the shared generator (`passerelle_plugin_api::testing::fuzz`). No input may
//! panic; an XML refusal names the byte offset. `PASSERELLE_FUZZ_CASES` runs longer (see
//! README, "Fuzzing").

#![allow(clippy::unwrap_used)]

use passerelle_exchange_ews::response::{self, Soap};
use passerelle_exchange_ews::{times, xml};
use passerelle_plugin_api::testing::fuzz;

fn recorded() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    paths.sort();
    assert!(paths.len() >= 4, "EWS fixtures missing in {dir}");
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

const EWS_TOKENS: &[&[u8]] = &[
    b"<m:ResponseMessages>",
    b"ResponseClass=\"Error\"",
    b"ResponseClass=\"Success\"",
    b"<m:ResponseCode>",
    b"</m:ResponseCode>",
    b"<t:CalendarItem>",
    b"</t:CalendarItem>",
    b"<t:ItemId Id=\"\" ChangeKey=\"\"/>",
    b"<t:Start>2025-13-40T25:00:00</t:Start>",
    b"IncludesLastItemInRange=\"false\"",
    b"TotalItemsInView=\"18446744073709551616\"",
    b"<t:MessageXml><t:Value Name=\"BackOffMilliseconds\">-1</t:Value></t:MessageXml>",
    b"<s:Fault>",
    b"<faultstring>",
    b"<t:ExtendedProperty>",
    b"<t:IsAllDayEvent>1</t:IsAllDayEvent>",
    b"xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"",
];

#[test]
fn fuzz_ews_soap_answers() {
    let tokens: Vec<&[u8]> = EWS_TOKENS.iter().chain(fuzz::XML_TOKENS).copied().collect();
    fuzz::bytes(
        "exchange-ews.response",
        &recorded(),
        &tokens,
        2000,
        |body| {
            match response::read(body) {
                Ok(Soap::Answer(answer)) => {
                    for message in &answer.messages {
                        if message.is_error() {
                            let e = message.error();
                            let _ = e.back_off_ms();
                            continue;
                        }
                        if let Ok(view) = response::calendar_view(message) {
                            for item in &view.items {
                                for t in [&item.start, &item.end].into_iter().flatten() {
                                    if let Some(s) = times::parse_ews(t) {
                                        let _ = times::utc(s);
                                    }
                                }
                            }
                        }
                        let _ = response::written_item(message);
                    }
                }
                Ok(Soap::Fault(_)) => {}
                Err(e) => assert!(!e.trim().is_empty()),
            }
            // Every refusal of the XML itself says where (or that there is nothing to read).
            if let Err(e) = xml::parse(body) {
                assert!(
                    e.0.contains("byte")
                        || e.0.contains("index")
                        || e.0.starts_with("no root element"),
                    "no offset in {e:?}"
                );
            }
        },
    );
}

#[test]
fn fuzz_ews_date_times() {
    let seeds: Vec<String> = [
        "2025-03-04T08:00:00Z",
        "2025-03-04T09:00:00+01:00",
        "2025-03-04T08:00:00.1234567",
        "9999-12-31T23:59:59-23:59",
        "0000-01-01T00:00:00",
    ]
    .map(String::from)
    .to_vec();
    let tokens: &[&[u8]] = &[
        b"-", b":", b"T", b"Z", b"+", b".", b"9999999", b"60", b"24", b"00",
    ];
    fuzz::text("exchange-ews.times", &seeds, tokens, 3000, |s| {
        if let Some(seconds) = times::parse_ews(s) {
            let back = times::utc(seconds);
            assert_eq!(times::parse_ews(&back), Some(seconds), "{s:?} -> {back}");
        }
        if let Err(e) = times::parse_rfc3339(s) {
            // The refusal quotes the value it refuses.
            assert!(e.contains(&format!("{s:?}")), "{e}");
        }
    });
}
