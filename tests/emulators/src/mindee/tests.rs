use super::*;
use crate::kit::bytes::find;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const KEY: &str = "test-mindee-key";

struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 POST on a fresh connection (std only, `Connection: close`).
fn send(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    exchange("POST", url, headers, body)
}

fn exchange(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = find(&raw, b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head[9..12].parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    Reply { status, head, body }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = find(body, b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
}

/// A multipart form with one part; `file_name` `None` makes it a plain field.
fn form(field: &str, file_name: Option<&str>, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "emulator-test-boundary";
    let disposition = match file_name {
        Some(name) => format!("form-data; name=\"{field}\"; filename=\"{name}\""),
        None => format!("form-data; name=\"{field}\""),
    };
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn predict_url(emu: &MindeeEmulator, version: &str) -> String {
    format!(
        "{}/products/mindee/expense_receipts/{version}/predict",
        emu.api_url()
    )
}

fn upload(
    emu: &MindeeEmulator,
    version: &str,
    field: &str,
    name: Option<&str>,
    content: &[u8],
) -> Reply {
    let (content_type, body) = form(field, name, content);
    let auth = format!("Token {KEY}");
    send(
        &predict_url(emu, version),
        &[("Authorization", &auth), ("Content-Type", &content_type)],
        &body,
    )
}

fn start() -> MindeeEmulator {
    MindeeEmulator::start(MindeeOptions {
        per_second: 0,
        per_minute: 0,
        ..MindeeOptions::default()
    })
    .unwrap()
}

#[test]
fn the_token_is_checked_after_the_route() {
    let emu = start();
    let url = predict_url(&emu, "v5");
    let none = send(&url, &[], b"");
    assert_eq!(none.status, 401);
    assert_eq!(
        none.json()["api_request"]["error"]["details"],
        "No token provided"
    );
    let bearer = send(&url, &[("Authorization", &format!("Bearer {KEY}"))], b"");
    assert_eq!(
        bearer.json()["api_request"]["error"]["details"],
        "No token provided"
    );
    let wrong = send(&url, &[("Authorization", "Token nope")], b"");
    assert_eq!(wrong.status, 401);
    assert_eq!(
        wrong.json()["api_request"]["error"]["details"],
        "Invalid token provided"
    );
    // An unknown product is a 404 whatever the token.
    let v3 = send(&predict_url(&emu, "v3"), &[], b"");
    assert_eq!(v3.status, 404);
    assert_eq!(v3.json()["api_request"]["error"]["code"], "NotFound");
    let elsewhere = send(&format!("{}/v2/whatever", emu.url()), &[], b"");
    assert_eq!(elsewhere.status, 404);
    assert_eq!(emu.request_count(), 5);
    assert_eq!(emu.predicted_pages(), 0);
}

#[test]
fn the_document_field_must_hold_a_file() {
    let emu = start();
    let auth = format!("Token {KEY}");
    let url = predict_url(&emu, "v5");
    let empty = send(
        &url,
        &[
            ("Authorization", &auth),
            ("Content-Type", "multipart/form-data; boundary=xyz"),
        ],
        b"--xyz--\r\n",
    );
    assert_eq!(empty.status, 400, "{}", empty.text());
    assert_eq!(
        empty.json()["api_request"]["error"]["details"]["document"][0],
        "No file was submitted."
    );
    let image = sample_jpeg(16, 16);
    let wrong_name = upload(&emu, "v5", "file", Some("r.jpg"), &image);
    assert_eq!(wrong_name.status, 400);
    assert_eq!(
        wrong_name.json()["api_request"]["error"]["details"]["document"][0],
        "No file was submitted."
    );
    let not_a_file = upload(&emu, "v5", "document", None, &image);
    assert_eq!(not_a_file.status, 400);
    assert!(
        not_a_file.json()["api_request"]["error"]["details"]["document"][0]
            .as_str()
            .unwrap()
            .starts_with("The submitted data was not a file")
    );
    let json_body = send(
        &url,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        b"{\"doc\": \"x\"}",
    );
    assert_eq!(json_body.status, 400);
    let empty_file = upload(&emu, "v5", "document", Some("r.jpg"), b"");
    assert_eq!(
        empty_file.json()["api_request"]["error"]["details"]["document"][0],
        "The submitted file is empty."
    );
    assert_eq!(emu.predicted_pages(), 0);
    assert!(emu.uploads().is_empty());
}

#[test]
fn content_is_checked_like_mindee() {
    let emu = start();
    let text = upload(&emu, "v5", "document", Some("r.jpg"), b"Total 12.50 EUR");
    assert_eq!(text.status, 400);
    assert_eq!(
        text.json()["api_request"]["error"]["message"],
        "Invalid file type"
    );
    let broken = upload(
        &emu,
        "v5",
        "document",
        Some("r.jpg"),
        b"\xFF\xD8\xFF\xE0\0\x10JFIF",
    );
    assert_eq!(broken.status, 400);
    assert_eq!(
        broken.json()["api_request"]["error"]["message"],
        "Invalid file"
    );
    let mut big = sample_jpeg(8, 8);
    big.resize(MAX_BYTES + 1, 0);
    let big = upload(&emu, "v5", "document", Some("r.jpg"), &big);
    assert_eq!(big.status, 400);
    assert_eq!(
        big.json()["api_request"]["error"]["message"],
        "File is too big"
    );
    let long = upload(&emu, "v5", "document", Some("r.pdf"), &sample_pdf(11));
    assert_eq!(
        long.json()["api_request"]["error"]["message"],
        "Too many pages"
    );
    assert_eq!(emu.predicted_pages(), 0);
    let pdf = upload(&emu, "v5", "document", Some("r.pdf"), &sample_pdf(3));
    assert_eq!(pdf.status, 201);
    assert_eq!(emu.predicted_pages(), 3);
}

#[test]
fn readable_documents_get_the_real_samples() {
    let emu = start();
    let image = sample_jpeg(64, 48);
    let v5 = upload(&emu, "v5", "document", Some("ticket.jpg"), &image);
    assert_eq!(v5.status, 201);
    assert_eq!(v5.body, V5_COMPLETE.as_bytes());
    let v4 = upload(&emu, "v4", "document", Some("ticket.jpg"), &image);
    assert_eq!(v4.body, V4_COMPLETE.as_bytes());
    emu.set_answer(super::Answer::Empty);
    assert_eq!(
        upload(&emu, "v5", "document", Some("t.jpg"), &image).body,
        V5_EMPTY.as_bytes()
    );
    assert_eq!(
        upload(&emu, "v4", "document", Some("t.jpg"), &image).body,
        V4_EMPTY.as_bytes()
    );
    let uploads = emu.uploads();
    assert_eq!(uploads.len(), 4);
    assert_eq!(uploads[0].file_name, "ticket.jpg");
    assert_eq!(
        uploads[0].content_type.as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(uploads[0].bytes, image);
    assert_eq!(uploads[0].kind, "jpeg");
    assert_eq!(uploads[1].product_version, "v4");
    assert_eq!(emu.predicted_pages(), 4);
}

#[test]
fn plan_and_rate_limits() {
    let emu = MindeeEmulator::start(MindeeOptions::default()).unwrap();
    let image = sample_jpeg(8, 8);
    emu.set_plan_limit_reached(true);
    let plan = upload(&emu, "v5", "document", Some("t.jpg"), &image);
    assert_eq!(plan.status, 403);
    assert_eq!(
        plan.json()["api_request"]["error"]["code"],
        "PlanLimitReached"
    );
    emu.set_plan_limit_reached(false);
    emu.set_rate_limited(true);
    let limited = upload(&emu, "v5", "document", Some("t.jpg"), &image);
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.json()["api_request"]["error"]["code"],
        "TooManyRequests"
    );
    emu.set_rate_limited(false);
    // 4 requests per second: the fifth within the second is refused.
    let statuses: Vec<u16> = (0..5)
        .map(|_| upload(&emu, "v5", "document", Some("t.jpg"), &image).status)
        .collect();
    assert_eq!(statuses, [201, 201, 201, 201, 429]);
}

#[test]
fn outages_are_scripted() {
    let emu = start();
    let image = sample_jpeg(8, 8);
    emu.fail_next(1, Failure::BadGateway);
    emu.fail_next(1, Failure::InferenceFailed);
    let gateway = upload(&emu, "v5", "document", Some("t.jpg"), &image);
    assert_eq!(gateway.status, 502);
    assert!(gateway.text().contains("<h1>An error occurred.</h1>"));
    // A refused upload does not use up the inference failure.
    assert_eq!(
        upload(&emu, "v5", "document", Some("t.txt"), b"text").status,
        400
    );
    let failed = upload(&emu, "v5", "document", Some("t.jpg"), &image);
    assert_eq!(failed.status, 500);
    assert_eq!(
        failed.json()["api_request"]["error"]["message"],
        "Inference failed"
    );
    assert_eq!(
        upload(&emu, "v5", "document", Some("t.jpg"), &image).status,
        201
    );
    emu.set_unavailable(true);
    assert_eq!(
        upload(&emu, "v5", "document", Some("t.jpg"), &image).status,
        502
    );
    assert_eq!(emu.predicted_pages(), 1);
}

#[test]
fn generated_jpegs_are_well_formed() {
    assert_eq!(jpeg::AC_VALUES.len(), 162);
    let image = sample_jpeg(120, 90);
    assert!(image.starts_with(&[0xFF, 0xD8, 0xFF, 0xE0]));
    assert!(image.ends_with(&[0xFF, 0xD9]));
    assert_eq!(check_jpeg(&image), Ok((120, 90)));
    assert!(matches!(inspect(&image), Ok("jpeg")));
    // Odd sizes need edge replication; a 1×1 image is still a JPEG.
    assert_eq!(check_jpeg(&sample_jpeg(13, 7)), Ok((13, 7)));
    assert_eq!(check_jpeg(&sample_jpeg(1, 1)), Ok((1, 1)));
}

#[test]
fn broken_jpegs_are_refused() {
    let image = sample_jpeg(32, 32);
    let truncated = &image[..image.len() - 2];
    assert!(check_jpeg(truncated).is_err());
    assert!(check_jpeg(&[0xFF, 0xD8, 0xFF, 0xD9]).is_err());
    assert!(check_jpeg(b"\xFF\xD8\xFF\xE0garbage").is_err());
    assert!(matches!(
        inspect(b"\xFF\xD8\xFF\xE0garbage"),
        Err(Inspection::Broken(_))
    ));
}

#[test]
fn other_kinds_are_recognised() {
    assert!(matches!(inspect(&sample_pdf(2)), Ok("pdf")));
    assert_eq!(count_pdf_pages(&sample_pdf(11)), 11);
    assert!(matches!(inspect(b"II*\0rest"), Ok("tiff")));
    assert!(matches!(
        inspect(b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic"),
        Ok("heic")
    ));
    assert!(matches!(
        inspect(b"GIF89a......"),
        Err(Inspection::Unsupported)
    ));
    assert!(matches!(
        inspect(b"hello world"),
        Err(Inspection::Unsupported)
    ));
}

// ---- API v2 ---------------------------------------------------------------------

const V2_KEY: &str = "test-mindee-v2-key";
const MODEL: &str = "94340559-b994-45e6-8b5c-be626027f1b2";

fn v2_form(model_id: Option<&str>, file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "emulator-v2-boundary";
    let mut body = Vec::new();
    if let Some(m) = model_id {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"model_id\"\r\n\r\n{m}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((name, bytes)) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn enqueue(
    emu: &MindeeEmulator,
    auth: Option<&str>,
    model_id: Option<&str>,
    file: Option<(&str, &[u8])>,
) -> Reply {
    let (content_type, body) = v2_form(model_id, file);
    let mut headers = vec![("Content-Type", content_type.as_str())];
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    send(
        &format!("{}/v2/inferences/enqueue", emu.v2_url()),
        &headers,
        &body,
    )
}

fn v2_get(emu: &MindeeEmulator, path: &str, auth: &str) -> Reply {
    exchange(
        "GET",
        &format!("{}{path}", emu.v2_url()),
        &[("Authorization", auth)],
        b"",
    )
}

#[test]
fn v2_refuses_a_v1_header_and_a_missing_key_with_the_real_bodies() {
    let emu = start();
    let jpeg = sample_jpeg(8, 8);
    let r = enqueue(
        &emu,
        Some(&format!("Token {V2_KEY}")),
        Some(MODEL),
        Some(("r.jpg", &jpeg)),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.text(), v2::ERROR_401_INVALID_API_KEY);
    let r = enqueue(&emu, None, Some(MODEL), Some(("r.jpg", &jpeg)));
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "401-008");
    let r = v2_get(&emu, "/v2/search/models", KEY);
    assert_eq!(r.status, 401, "a v1 key is not a v2 key");
    assert!(emu.uploads().is_empty());
}

#[test]
fn v2_refuses_bad_and_unknown_models_and_files() {
    let emu = start();
    let jpeg = sample_jpeg(8, 8);
    let r = enqueue(
        &emu,
        Some(V2_KEY),
        Some("INVALID MODEL ID"),
        Some(("r.jpg", &jpeg)),
    );
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["errors"][0]["pointer"], "#/model_id");
    assert_eq!(r.json()["code"], "422-001");
    let r = enqueue(&emu, Some(V2_KEY), None, Some(("r.jpg", &jpeg)));
    assert_eq!(r.status, 422);
    let r = enqueue(
        &emu,
        Some(V2_KEY),
        Some("fc405e37-4ba4-4d03-aeba-533a8d1f0f21"),
        Some(("r.jpg", &jpeg)),
    );
    assert_eq!(r.status, 404);
    assert!(r.json()["code"].as_str().unwrap().starts_with("404-"));
    let r = enqueue(&emu, Some(V2_KEY), Some(MODEL), None);
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["errors"][0]["pointer"], "#/file");
    let r = enqueue(
        &emu,
        Some(V2_KEY),
        Some(MODEL),
        Some(("r.gif", b"GIF89a\x01\0")),
    );
    assert_eq!(r.status, 422);
    assert!(emu.uploads().is_empty());
}

#[test]
fn v2_job_lifecycle_processing_then_redirect_to_the_inference() {
    let emu = start();
    let tiff = b"II*\0\x08\0\0\0";
    let r = enqueue(&emu, Some(V2_KEY), Some(MODEL), Some(("scan.tif", tiff)));
    assert_eq!(r.status, 202, "{}", r.text());
    let job = r.json()["job"].clone();
    assert_eq!(job["status"], "Processing");
    assert_eq!(job["model_id"], MODEL);
    assert_eq!(job["filename"], "scan.tif");
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["polling_url"], format!("{}/v2/jobs/{id}", emu.v2_url()));
    assert_eq!(emu.uploads()[0].kind, "tiff");

    let r = v2_get(&emu, &format!("/v2/inferences/{id}"), V2_KEY);
    assert_eq!(r.status, 404, "no inference before the job is processed");
    let r = v2_get(&emu, &format!("/v2/jobs/{id}"), V2_KEY);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["job"]["status"], "Processing");
    let r = v2_get(&emu, &format!("/v2/jobs/{id}"), V2_KEY);
    assert_eq!(r.status, 302);
    let result_url = format!("{}/v2/inferences/{id}", emu.v2_url());
    assert!(
        r.head
            .to_ascii_lowercase()
            .contains(&format!("location: {result_url}").to_ascii_lowercase()),
        "{}",
        r.head
    );
    assert_eq!(r.json()["job"]["status"], "Processed");
    assert_eq!(r.json()["job"]["result_url"], result_url);
    let r = v2_get(&emu, &format!("/v2/inferences/{id}"), V2_KEY);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), FINDOC_COMPLETE);
    // The Node.js client's path for the same extraction.
    let r = v2_get(
        &emu,
        &format!("/v2/products/extraction/results/{id}"),
        V2_KEY,
    );
    assert_eq!(r.text(), FINDOC_COMPLETE);
    let r = v2_get(
        &emu,
        &format!("/v2/inferences/{id}"),
        &format!("Token {V2_KEY}"),
    );
    assert_eq!(r.status, 401);
    assert_eq!(v2_get(&emu, "/v2/jobs/nope", V2_KEY).status, 404);
    assert_eq!(emu.v2_polls(), 3);
}

#[test]
fn v2_failed_jobs_carry_their_error() {
    let emu = start();
    emu.fail_next_v2_job();
    let jpeg = sample_jpeg(8, 8);
    let id = enqueue(&emu, Some(V2_KEY), Some(MODEL), Some(("r.jpg", &jpeg))).json()["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    v2_get(&emu, &format!("/v2/jobs/{id}"), V2_KEY);
    let r = v2_get(&emu, &format!("/v2/jobs/{id}"), V2_KEY);
    assert_eq!(r.status, 200);
    let job = &r.json()["job"];
    assert_eq!(job["status"], "Failed");
    assert_eq!(job["result_url"], Value::Null);
    assert_eq!(job["error"]["status"], 422);
    assert_eq!(job["error"]["title"], "Inference failed");
    // A broken image fails its job too, with the reason.
    let broken = &jpeg[..jpeg.len() / 2];
    let id = enqueue(&emu, Some(V2_KEY), Some(MODEL), Some(("r.jpg", broken))).json()["job"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    v2_get(&emu, &format!("/v2/jobs/{id}"), V2_KEY);
    let r = v2_get(&emu, &format!("/v2/jobs/{id}"), V2_KEY);
    assert!(r.json()["job"]["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("JPEG"));
}

#[test]
fn v2_lists_models_without_billing() {
    let emu = start();
    let r = v2_get(&emu, "/v2/search/models", V2_KEY);
    assert_eq!(r.status, 200);
    let models = r.json()["models"].as_array().unwrap().clone();
    assert_eq!(models[0]["id"], MODEL);
    assert_eq!(models.len(), 6);
    let r = v2_get(&emu, "/v2/search/models?model_type=split", V2_KEY);
    assert_eq!(r.json()["models"].as_array().unwrap().len(), 1);
    assert_eq!(r.json()["pagination"]["total_items_unfiltered"], 6);
    let r = v2_get(&emu, "/v2/search/models?name=expense", V2_KEY);
    assert_eq!(r.json()["models"][0]["id"], MODEL);
    assert_eq!(emu.predicted_pages(), 0);
    assert_eq!(v2_get(&emu, "/v2/nothing", V2_KEY).status, 404);
}
