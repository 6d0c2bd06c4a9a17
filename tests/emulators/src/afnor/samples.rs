//! Invoices of the reform: the buyer is addressed by its electronic address (BT-49, scheme
//! 0225) and its SIREN (scheme 0002), as XP Z12-012 asks.

use super::{COMPANY_SIREN, CUSTOMER_SIREN, SUPPLIER_SIREN};

/// A UBL invoice from `seller` to `buyer` (SIRENs or addressing identifiers).
pub fn ubl(number: &str, seller: &str, buyer: &str) -> Vec<u8> {
    let number = super::escape(number);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
     xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
     xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>
  <cbc:ID>{number}</cbc:ID>
  <cbc:IssueDate>2026-09-01</cbc:IssueDate>
  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  <cac:AccountingSupplierParty><cac:Party>
<cbc:EndpointID schemeID="0225">{seller}</cbc:EndpointID>
<cac:PartyLegalEntity><cbc:RegistrationName>VENDEUR</cbc:RegistrationName><cbc:CompanyID schemeID="0002">{seller}</cbc:CompanyID></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party>
<cbc:EndpointID schemeID="0225">{buyer}</cbc:EndpointID>
<cac:PartyLegalEntity><cbc:RegistrationName>ACHETEUR</cbc:RegistrationName><cbc:CompanyID schemeID="0002">{buyer}</cbc:CompanyID></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingCustomerParty>
  <cac:LegalMonetaryTotal><cbc:PayableAmount currencyID="EUR">120.00</cbc:PayableAmount></cac:LegalMonetaryTotal>
</Invoice>
"#
    )
    .into_bytes()
}

/// A CII invoice from `seller` to `buyer`.
pub fn cii(number: &str, seller: &str, buyer: &str) -> Vec<u8> {
    let number = super::escape(number);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
  <rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>
  <rsm:ExchangedDocument><ram:ID>{number}</ram:ID><ram:TypeCode>380</ram:TypeCode><ram:IssueDateTime><udt:DateTimeString format="102">20260901</udt:DateTimeString></ram:IssueDateTime></rsm:ExchangedDocument>
  <rsm:SupplyChainTradeTransaction>
<ram:ApplicableHeaderTradeAgreement>
  <ram:SellerTradeParty><ram:Name>VENDEUR</ram:Name><ram:SpecifiedLegalOrganization><ram:ID schemeID="0002">{seller}</ram:ID></ram:SpecifiedLegalOrganization></ram:SellerTradeParty>
  <ram:BuyerTradeParty><ram:Name>ACHETEUR</ram:Name><ram:SpecifiedLegalOrganization><ram:ID schemeID="0002">{buyer}</ram:ID></ram:SpecifiedLegalOrganization><ram:URIUniversalCommunication><ram:URIID schemeID="0225">{buyer}</ram:URIID></ram:URIUniversalCommunication></ram:BuyerTradeParty>
</ram:ApplicableHeaderTradeAgreement>
<ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode></ram:ApplicableHeaderTradeSettlement>
  </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"#
    )
    .into_bytes()
}

/// A Factur-X PDF embedding [`cii`].
pub fn factur_x(number: &str, seller: &str, buyer: &str) -> Vec<u8> {
    let xml = cii(number, seller, buyer);
    let compressed = miniz_oxide::deflate::compress_to_vec_zlib(&xml, 6);
    let mut stream = format!(
        "<< /Type /EmbeddedFile /Subtype /text#2Fxml /Filter /FlateDecode /Length {} >>\nstream\n",
        compressed.len()
    )
    .into_bytes();
    stream.extend_from_slice(&compressed);
    stream.extend_from_slice(b"\nendstream");
    crate::chorus_pro::samples::assemble(&[
        b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(factur-x.xml) 4 0 R] >> >> >>".to_vec(),
        b"<< /Type /Pages /Kids [] /Count 0 >>".to_vec(),
        stream,
        b"<< /Type /Filespec /F (factur-x.xml) /UF (factur-x.xml) /AFRelationship /Data /EF << /F 3 0 R >> >>".to_vec(),
    ])
}

/// An invoice the client company sends to its private customer.
pub fn outgoing(number: &str) -> Vec<u8> {
    ubl(number, COMPANY_SIREN, CUSTOMER_SIREN)
}

/// An invoice the supplier sends to the client company.
pub fn incoming(number: &str) -> Vec<u8> {
    cii(number, SUPPLIER_SIREN, COMPANY_SIREN)
}
