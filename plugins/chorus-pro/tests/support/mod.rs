//! Test invoices: UBL and CII documents, and real minimal PDFs — with a cross-reference table,
//! or (PDF 1.5) with their dictionaries packed in a compressed object stream and a
//! cross-reference stream, as many Factur-X writers produce them.

#![allow(dead_code)]

pub const SUPPLIER_SIRET: &str = "12345678200010";

pub fn ubl(number: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
         xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
         xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:ID>{number}</cbc:ID>
  <cbc:IssueDate>2025-03-14</cbc:IssueDate>
  <cac:AccountingSupplierParty><cac:Party><cac:PartyLegalEntity>
    <cbc:CompanyID schemeID="0009">{SUPPLIER_SIRET}</cbc:CompanyID>
  </cac:PartyLegalEntity></cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party><cac:PartyLegalEntity>
    <cbc:CompanyID schemeID="0009">21920023500014</cbc:CompanyID>
  </cac:PartyLegalEntity></cac:Party></cac:AccountingCustomerParty>
  <cac:LegalMonetaryTotal><cbc:PayableAmount currencyID="EUR">120.00</cbc:PayableAmount></cac:LegalMonetaryTotal>
</Invoice>
"#
    )
    .into_bytes()
}

pub fn cii(number: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
    xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100">
  <rsm:ExchangedDocument><ram:ID>{number}</ram:ID><ram:TypeCode>380</ram:TypeCode></rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
    <ram:ApplicableHeaderTradeAgreement>
      <ram:SellerTradeParty><ram:Name>ACME</ram:Name></ram:SellerTradeParty>
      <ram:BuyerTradeParty><ram:Name>CLAMART</ram:Name></ram:BuyerTradeParty>
    </ram:ApplicableHeaderTradeAgreement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"#
    )
    .into_bytes()
}

/// A Factur-X PDF with a classic cross-reference table; the embedded XML is compressed.
pub fn factur_x(number: &str) -> Vec<u8> {
    pdf_with_attachment(number, "factur-x.xml")
}

/// A PDF whose attachment has another name.
pub fn pdf_with_attachment(number: &str, name: &str) -> Vec<u8> {
    let xml = cii(number);
    let objects = vec![
        format!(
            "<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [({name}) 5 0 R] >> >> /AF [5 0 R] >>"
        )
        .into_bytes(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>".to_vec(),
        stream("", b"BT /F1 12 Tf 72 770 Td (Invoice) Tj ET"),
        format!("<< /Type /Filespec /F ({name}) /UF ({name}) /AFRelationship /Data /EF << /F 6 0 R >> >>")
            .into_bytes(),
        stream(
            &format!(
                "/Type /EmbeddedFile /Subtype /text#2Fxml /Filter /FlateDecode /Params << /Size {} >> ",
                xml.len()
            ),
            &miniz_oxide::deflate::compress_to_vec_zlib(&xml, 6),
        ),
    ];
    with_xref_table(&objects)
}

/// A PDF without attachment.
pub fn plain_pdf() -> Vec<u8> {
    with_xref_table(&[
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>".to_vec(),
    ])
}

/// A Factur-X PDF 1.5 whose catalog, pages and file specification sit in a compressed object
/// stream (so `factur-x.xml` appears nowhere in the clear), with a cross-reference stream.
pub fn factur_x_with_object_stream(number: &str) -> Vec<u8> {
    let xml = cii(number);
    let packed: Vec<(u32, Vec<u8>)> = vec![
        (
            1,
            b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(factur-x.xml) 5 0 R] >> >> /AF [5 0 R] >>".to_vec(),
        ),
        (2, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec()),
        (
            3,
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>".to_vec(),
        ),
        (
            5,
            b"<< /Type /Filespec /F (factur-x.xml) /UF (factur-x.xml) /AFRelationship /Data /EF << /F 6 0 R >> >>".to_vec(),
        ),
    ];
    let mut header = String::new();
    let mut bodies = Vec::new();
    for (number, body) in &packed {
        header.push_str(&format!("{number} {} ", bodies.len()));
        bodies.extend_from_slice(body);
        bodies.push(b'\n');
    }
    let mut content = header.clone().into_bytes();
    content.extend_from_slice(&bodies);
    let object_stream = stream(
        &format!(
            "/Type /ObjStm /N {} /First {} /Filter /FlateDecode ",
            packed.len(),
            header.len()
        ),
        &miniz_oxide::deflate::compress_to_vec_zlib(&content, 6),
    );

    let mut out = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = std::collections::BTreeMap::new();
    let mut put = |out: &mut Vec<u8>, number: u32, body: &[u8]| {
        offsets.insert(number, out.len());
        out.extend_from_slice(format!("{number} 0 obj\n").as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    };
    put(
        &mut out,
        4,
        &stream("", b"BT /F1 12 Tf 72 770 Td (Invoice) Tj ET"),
    );
    put(
        &mut out,
        6,
        &stream(
            &format!(
                "/Type /EmbeddedFile /Subtype /text#2Fxml /Filter /FlateDecode /Params << /Size {} >> ",
                xml.len()
            ),
            &miniz_oxide::deflate::compress_to_vec_zlib(&xml, 6),
        ),
    );
    put(&mut out, 7, &object_stream);
    let xref_at = out.len();
    // /W [1 4 2]: type, offset or object stream number, generation or index.
    let mut rows = Vec::new();
    let mut row = |kind: u8, field2: u32, field3: u16| {
        rows.push(kind);
        rows.extend_from_slice(&field2.to_be_bytes());
        rows.extend_from_slice(&field3.to_be_bytes());
    };
    row(0, 0, 65535);
    for number in 1..=8u32 {
        match packed.iter().position(|(n, _)| *n == number) {
            Some(index) => row(2, 7, index as u16),
            None if number == 8 => row(1, xref_at as u32, 0),
            None => row(1, offsets[&number] as u32, 0),
        }
    }
    out.extend_from_slice(b"8 0 obj\n");
    out.extend_from_slice(&stream(
        "/Type /XRef /Size 9 /W [1 4 2] /Root 1 0 R ",
        &rows,
    ));
    out.extend_from_slice(format!("\nendobj\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
    out
}

fn stream(extra: &str, data: &[u8]) -> Vec<u8> {
    let mut out = format!("<< {extra}/Length {} >>\nstream\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
    out
}

fn with_xref_table(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}
