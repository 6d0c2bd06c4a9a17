//! Test invoices: a UBL and a CII invoice following EN 16931's core, and real minimal
//! Factur-X PDFs (PDF 1.7 with the CII XML as an embedded, FlateDecode-compressed file,
//! referenced from the catalog's `/EmbeddedFiles` name tree and `/AF`, with a valid
//! cross-reference table).

use super::{BUYER_SIRET, SUPPLIER_SIRET};

/// A UBL 2.1 invoice numbered `number`.
pub fn ubl_invoice(number: &str) -> Vec<u8> {
    ubl(number, true)
}

/// A UBL invoice without its issue date and buyer: Chorus Pro rejects it after deposit.
pub fn incomplete_ubl_invoice(number: &str) -> Vec<u8> {
    ubl(number, false)
}

/// A UBL invoice to `buyer`, with the service code (BT-10, `cbc:BuyerReference`) and
/// engagement number (BT-13, `cac:OrderReference/cbc:ID`) given.
pub fn ubl_invoice_to(
    number: &str,
    buyer: &str,
    service: Option<&str>,
    engagement: Option<&str>,
) -> Vec<u8> {
    let text = String::from_utf8(ubl(number, true)).unwrap_or_default();
    let mut references = String::new();
    if let Some(service) = service {
        references.push_str(&format!(
            "  <cbc:BuyerReference>{}</cbc:BuyerReference>\n",
            escape(service)
        ));
    }
    if let Some(engagement) = engagement {
        references.push_str(&format!(
            "  <cac:OrderReference><cbc:ID>{}</cbc:ID></cac:OrderReference>\n",
            escape(engagement)
        ));
    }
    text.replace(BUYER_SIRET, buyer)
        .replace(
            "  <cac:AccountingSupplierParty>",
            &format!("{references}  <cac:AccountingSupplierParty>"),
        )
        .into_bytes()
}

fn ubl(number: &str, complete: bool) -> Vec<u8> {
    let number = escape(number);
    let issue = if complete {
        "  <cbc:IssueDate>2025-03-14</cbc:IssueDate>\n"
    } else {
        ""
    };
    let customer = if complete {
        format!(
            r#"  <cac:AccountingCustomerParty>
<cac:Party>
  <cac:PartyIdentification><cbc:ID schemeID="0009">{BUYER_SIRET}</cbc:ID></cac:PartyIdentification>
  <cac:PartyLegalEntity>
    <cbc:RegistrationName>COMMUNE DE CLAMART</cbc:RegistrationName>
    <cbc:CompanyID schemeID="0009">{BUYER_SIRET}</cbc:CompanyID>
  </cac:PartyLegalEntity>
</cac:Party>
  </cac:AccountingCustomerParty>
"#
        )
    } else {
        String::new()
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
     xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
     xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>
  <cbc:ID>{number}</cbc:ID>
{issue}  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  <cac:AccountingSupplierParty>
<cac:Party>
  <cac:PartyIdentification><cbc:ID schemeID="0009">{SUPPLIER_SIRET}</cbc:ID></cac:PartyIdentification>
  <cac:PartyLegalEntity>
    <cbc:RegistrationName>ACME FOURNITURES SAS</cbc:RegistrationName>
    <cbc:CompanyID schemeID="0009">{SUPPLIER_SIRET}</cbc:CompanyID>
  </cac:PartyLegalEntity>
</cac:Party>
  </cac:AccountingSupplierParty>
{customer}  <cac:TaxTotal>
<cbc:TaxAmount currencyID="EUR">20.00</cbc:TaxAmount>
  </cac:TaxTotal>
  <cac:LegalMonetaryTotal>
<cbc:LineExtensionAmount currencyID="EUR">100.00</cbc:LineExtensionAmount>
<cbc:TaxExclusiveAmount currencyID="EUR">100.00</cbc:TaxExclusiveAmount>
<cbc:TaxInclusiveAmount currencyID="EUR">120.00</cbc:TaxInclusiveAmount>
<cbc:PayableAmount currencyID="EUR">120.00</cbc:PayableAmount>
  </cac:LegalMonetaryTotal>
  <cac:InvoiceLine>
<cbc:ID>1</cbc:ID>
<cbc:InvoicedQuantity unitCode="C62">1</cbc:InvoicedQuantity>
<cbc:LineExtensionAmount currencyID="EUR">100.00</cbc:LineExtensionAmount>
<cac:Item><cbc:Name>Fournitures de bureau</cbc:Name></cac:Item>
<cac:Price><cbc:PriceAmount currencyID="EUR">100.00</cbc:PriceAmount></cac:Price>
  </cac:InvoiceLine>
</Invoice>
"#
    )
    .into_bytes()
}

/// A UN/CEFACT CII D16B invoice numbered `number` (what Factur-X embeds).
pub fn cii_invoice(number: &str) -> Vec<u8> {
    let number = escape(number);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext>
<ram:GuidelineSpecifiedDocumentContextParameter>
  <ram:ID>urn:cen.eu:en16931:2017</ram:ID>
</ram:GuidelineSpecifiedDocumentContextParameter>
  </rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument>
<ram:ID>{number}</ram:ID>
<ram:TypeCode>380</ram:TypeCode>
<ram:IssueDateTime><udt:DateTimeString format="102">20250314</udt:DateTimeString></ram:IssueDateTime>
  </rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
<ram:ApplicableHeaderTradeAgreement>
  <ram:SellerTradeParty>
    <ram:Name>ACME FOURNITURES SAS</ram:Name>
    <ram:SpecifiedLegalOrganization><ram:ID schemeID="0009">{SUPPLIER_SIRET}</ram:ID></ram:SpecifiedLegalOrganization>
  </ram:SellerTradeParty>
  <ram:BuyerTradeParty>
    <ram:Name>COMMUNE DE CLAMART</ram:Name>
    <ram:SpecifiedLegalOrganization><ram:ID schemeID="0009">{BUYER_SIRET}</ram:ID></ram:SpecifiedLegalOrganization>
  </ram:BuyerTradeParty>
</ram:ApplicableHeaderTradeAgreement>
<ram:ApplicableHeaderTradeDelivery/>
<ram:ApplicableHeaderTradeSettlement>
  <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
  <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    <ram:LineTotalAmount>100.00</ram:LineTotalAmount>
    <ram:TaxBasisTotalAmount>100.00</ram:TaxBasisTotalAmount>
    <ram:TaxTotalAmount currencyID="EUR">20.00</ram:TaxTotalAmount>
    <ram:GrandTotalAmount>120.00</ram:GrandTotalAmount>
    <ram:DuePayableAmount>120.00</ram:DuePayableAmount>
  </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
</ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"#
    )
    .into_bytes()
}

/// A Factur-X PDF whose embedded `factur-x.xml` is [`cii_invoice`]`(number)`.
pub fn factur_x_pdf(number: &str) -> Vec<u8> {
    pdf(number, Some(("factur-x.xml", &cii_invoice(number))))
}

/// A PDF that embeds a file with another name (not Factur-X).
pub fn pdf_with_attachment(number: &str, attachment_name: &str) -> Vec<u8> {
    pdf(number, Some((attachment_name, &cii_invoice(number))))
}

/// A PDF without any embedded file.
pub fn plain_pdf(number: &str) -> Vec<u8> {
    pdf(number, None)
}

fn pdf(number: &str, attachment: Option<(&str, &[u8])>) -> Vec<u8> {
    let text = format!(
        "BT /F1 14 Tf 72 770 Td (Facture {}) Tj ET",
        number.replace(['(', ')', '\\'], "")
    );
    let mut objects: Vec<Vec<u8>> = Vec::new();
    let catalog = match attachment {
        Some((name, _)) => format!(
            "<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [({name}) 5 0 R] >> >> /AF [5 0 R] >>"
        ),
        None => "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
    };
    objects.push(catalog.into_bytes());
    objects.push(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec());
    objects.push(
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 7 0 R >> >> >>"
            .to_vec(),
    );
    objects.push(stream(b"", text.as_bytes()));
    if let Some((name, content)) = attachment {
        objects.push(
            format!(
                "<< /Type /Filespec /F ({name}) /UF ({name}) /AFRelationship /Data /Desc (Invoice) /EF << /F 6 0 R /UF 6 0 R >> >>"
            )
            .into_bytes(),
        );
        let compressed = miniz_oxide::deflate::compress_to_vec_zlib(content, 6);
        objects.push(stream(
            format!(
                "/Type /EmbeddedFile /Subtype /text#2Fxml /Filter /FlateDecode /Params << /Size {} >> ",
                content.len()
            )
            .as_bytes(),
            &compressed,
        ));
    } else {
        objects.push(b"null".to_vec());
        objects.push(b"null".to_vec());
    }
    objects.push(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec());
    assemble(&objects)
}

/// `<< extra /Length n >>\nstream\n…\nendstream`.
fn stream(extra: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = b"<< ".to_vec();
    out.extend_from_slice(extra);
    out.extend_from_slice(format!("/Length {} >>\nstream\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\nendstream");
    out
}

/// Numbers the objects from 1, writes the cross-reference table and the trailer.
pub fn assemble(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n", objects.len() + 1).as_bytes());
    out.extend_from_slice(b"0000000000 65535 f \n");
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

fn escape(s: &str) -> String {
    crate::kit::xml::escape_text(s)
}
