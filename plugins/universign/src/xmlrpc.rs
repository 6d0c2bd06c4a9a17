//! XML-RPC (<http://xmlrpc.com/spec.md>), the protocol of Universign's signer API: a complete
//! codec for method calls and method responses, written on quick-xml's pull parser.
//!
//! Every type of the specification is supported — `struct`, `array`, `string` (and untyped
//! text), `int`/`i4`, `boolean`, `double`, `base64`, `dateTime.iso8601` — plus the common `nil`
//! extension. Decoding is strict about structure (a wrong or missing element is an error that
//! says what was expected and what was found) and lenient where real servers differ:
//! whitespace between elements, base64 split over lines (the Ruby client sends 60 characters
//! per line), namespace prefixes (`ex:nil`), member order. Entity and character references
//! are resolved; a DOCTYPE is refused, so no entity can be declared. Nesting is limited to
//! [`MAX_DEPTH`] so that a hostile answer cannot exhaust the stack.
//!
//! Encoding writes no whitespace, `<i4>` for integers and explicit `<string>` elements, as
//! Universign itself does: its recorded answers re-encode byte for byte.
//!
//! Why not the `dxr` crate (0.8, checked against this module's tests): it trims untyped text
//! (the specification makes it a string, spaces included), refuses `dateTime.iso8601` with
//! dashes and base64 without padding (both in `lenient_where_servers_differ`), accepts an
//! element after `</methodResponse>`, overflows the stack on an answer nested 2,000 deep (an
//! abort that no panic guard catches), and reports every parse error as the whole input
//! document, without the reason.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use quick_xml::escape::partial_escape;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::{Reader, Writer};
use std::fmt;

/// Deepest nesting of values accepted when decoding.
pub const MAX_DEPTH: usize = 64;

/// Base64 as servers send it: padding optional.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// An XML-RPC value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i32),
    Boolean(bool),
    String(String),
    Double(f64),
    DateTime(DateTime),
    Base64(Vec<u8>),
    Struct(Struct),
    Array(Vec<Value>),
    /// The `<nil/>` extension.
    Nil,
}

impl Value {
    /// The XML-RPC name of this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Boolean(_) => "boolean",
            Value::String(_) => "string",
            Value::Double(_) => "double",
            Value::DateTime(_) => "dateTime.iso8601",
            Value::Base64(_) => "base64",
            Value::Struct(_) => "struct",
            Value::Array(_) => "array",
            Value::Nil => "nil",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i32(&self) -> Option<i32> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_struct(&self) -> Option<&Struct> {
        match self {
            Value::Struct(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Base64(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_datetime(&self) -> Option<&DateTime> {
        match self {
            Value::DateTime(d) => Some(d),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i32> for Value {
    fn from(i: i32) -> Self {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Boolean(b)
    }
}

impl From<Struct> for Value {
    fn from(s: Struct) -> Self {
        Value::Struct(s)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}

/// A struct's members, in the order they were written or read. Order carries no meaning in
/// XML-RPC (Universign's own answers change it between versions); it is kept so that
/// encoding what was decoded gives the same bytes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Struct(Vec<(String, Value)>);

impl Struct {
    pub fn new() -> Self {
        Struct(Vec::new())
    }

    /// Adds a member (builder style).
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.push(name, value);
        self
    }

    pub fn push(&mut self, name: &str, value: impl Into<Value>) {
        self.0.push((name.to_owned(), value.into()));
    }

    /// The first member of that name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A `dateTime.iso8601` value: a date and time without time zone (XML-RPC has none; the
/// server's zone applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl DateTime {
    /// Parses `20200924T13:31:54` (the form XML-RPC servers send) or `2020-09-24T13:31:54`.
    pub fn parse(text: &str) -> Option<DateTime> {
        let (date, time) = text.trim().split_once('T')?;
        let date: String = match date.len() {
            8 => date.to_owned(),
            10 if date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-' => date.replace('-', ""),
            _ => return None,
        };
        let time: String = match time.len() {
            8 if time.as_bytes()[2] == b':' && time.as_bytes()[5] == b':' => time.replace(':', ""),
            6 => time.to_owned(),
            _ => return None,
        };
        if date.len() != 8
            || time.len() != 6
            || !(date.clone() + &time).bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let num = |s: &str| s.parse::<u16>().ok();
        let dt = DateTime {
            year: num(&date[0..4])?,
            month: u8::try_from(num(&date[4..6])?).ok()?,
            day: u8::try_from(num(&date[6..8])?).ok()?,
            hour: u8::try_from(num(&time[0..2])?).ok()?,
            minute: u8::try_from(num(&time[2..4])?).ok()?,
            second: u8::try_from(num(&time[4..6])?).ok()?,
        };
        let valid = (1..=12).contains(&dt.month)
            && (1..=31).contains(&dt.day)
            && dt.hour < 24
            && dt.minute < 60
            && dt.second < 61;
        valid.then_some(dt)
    }

    /// The XML-RPC form, `20200924T13:31:54`.
    pub fn to_xmlrpc(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

impl fmt::Display for DateTime {
    /// ISO 8601 extended form, `2020-09-24T13:31:54`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// A request: method name and positional parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct MethodCall {
    pub method: String,
    pub params: Vec<Value>,
}

/// An answer: one value, or a fault.
#[derive(Debug, Clone, PartialEq)]
pub enum MethodResponse {
    Success(Value),
    Fault(Fault),
}

/// An XML-RPC fault: the server's error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: i32,
    pub message: String,
}

/// Why a document is not valid XML-RPC, or a value cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlRpcError {
    #[error("not well-formed XML: {0}")]
    Xml(String),
    #[error("expected {expected}, found {found}")]
    Unexpected { expected: String, found: String },
    #[error("invalid <{kind}> value {text:?}")]
    InvalidValue { kind: &'static str, text: String },
    #[error("values nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("a fault must be a struct with an int faultCode and a string faultString")]
    BadFault,
    #[error("a double must be finite to be written in XML-RPC, not {0}")]
    NonFinite(String),
}

// ---------------------------------------------------------------------------------------
// Encoding

/// Encodes a method call.
pub fn encode_call(call: &MethodCall) -> Result<String, XmlRpcError> {
    let mut w = Out::new();
    w.start("methodCall");
    w.element("methodName", &call.method);
    w.start("params");
    for param in &call.params {
        w.start("param");
        w.value(param)?;
        w.end("param");
    }
    w.end("params");
    w.end("methodCall");
    w.finish()
}

/// Encodes a method response (success or fault).
pub fn encode_response(response: &MethodResponse) -> Result<String, XmlRpcError> {
    let mut w = Out::new();
    w.start("methodResponse");
    match response {
        MethodResponse::Success(value) => {
            w.start("params");
            w.start("param");
            w.value(value)?;
            w.end("param");
            w.end("params");
        }
        MethodResponse::Fault(fault) => {
            w.start("fault");
            let s = Struct::new()
                .with("faultCode", fault.code)
                .with("faultString", fault.message.as_str());
            w.value(&Value::Struct(s))?;
            w.end("fault");
        }
    }
    w.end("methodResponse");
    w.finish()
}

/// Writes elements without indentation into a byte buffer. Writing into a `Vec` cannot
/// fail, so the writer's I/O results are dropped.
struct Out(Writer<Vec<u8>>);

impl Out {
    fn new() -> Self {
        let mut w = Writer::new(Vec::new());
        let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        Out(w)
    }

    fn start(&mut self, name: &str) {
        let _ = self.0.write_event(Event::Start(BytesStart::new(name)));
    }

    fn end(&mut self, name: &str) {
        let _ = self.0.write_event(Event::End(BytesEnd::new(name)));
    }

    fn text(&mut self, text: &str) {
        if !text.is_empty() {
            // `'` and `"` need no escaping in text; Universign does not escape them either.
            let _ = self
                .0
                .write_event(Event::Text(BytesText::from_escaped(partial_escape(text))));
        }
    }

    fn element(&mut self, name: &str, text: &str) {
        self.start(name);
        self.text(text);
        self.end(name);
    }

    fn value(&mut self, value: &Value) -> Result<(), XmlRpcError> {
        self.start("value");
        match value {
            Value::Int(i) => self.element("i4", &i.to_string()),
            Value::Boolean(b) => self.element("boolean", if *b { "1" } else { "0" }),
            Value::String(s) => self.element("string", s),
            Value::Double(d) => {
                if !d.is_finite() {
                    return Err(XmlRpcError::NonFinite(d.to_string()));
                }
                // Rust never writes an exponent for f64, which XML-RPC does not allow.
                self.element("double", &d.to_string())
            }
            Value::DateTime(dt) => self.element("dateTime.iso8601", &dt.to_xmlrpc()),
            Value::Base64(bytes) => self.element("base64", &STANDARD.encode(bytes)),
            Value::Struct(s) => {
                self.start("struct");
                for (name, v) in s.iter() {
                    self.start("member");
                    self.element("name", name);
                    self.value(v)?;
                    self.end("member");
                }
                self.end("struct");
            }
            Value::Array(items) => {
                self.start("array");
                self.start("data");
                for v in items {
                    self.value(v)?;
                }
                self.end("data");
                self.end("array");
            }
            Value::Nil => {
                let _ = self.0.write_event(Event::Empty(BytesStart::new("nil")));
            }
        }
        self.end("value");
        Ok(())
    }

    fn finish(self) -> Result<String, XmlRpcError> {
        String::from_utf8(self.0.into_inner())
            .map_err(|e| XmlRpcError::Xml(format!("encoded text is not UTF-8: {e}")))
    }
}

// ---------------------------------------------------------------------------------------
// Decoding

/// Decodes a method call (what a server receives).
pub fn decode_call(xml: &[u8]) -> Result<MethodCall, XmlRpcError> {
    let mut p = Parser::new(xml)?;
    p.open("methodCall")?;
    p.open("methodName")?;
    let method = p.text_until_close("methodName")?.trim().to_owned();
    let mut params = Vec::new();
    // `<params>` may be left out of a call without parameters.
    if p.next_is_open("params")? {
        p.open("params")?;
        while p.next_is_open("param")? {
            p.open("param")?;
            params.push(p.value(0)?);
            p.close("param")?;
        }
        p.close("params")?;
    }
    p.close("methodCall")?;
    p.end_of_document()?;
    Ok(MethodCall { method, params })
}

/// Decodes a method response (what a client receives).
pub fn decode_response(xml: &[u8]) -> Result<MethodResponse, XmlRpcError> {
    let mut p = Parser::new(xml)?;
    p.open("methodResponse")?;
    let response = if p.next_is_open("fault")? {
        p.open("fault")?;
        let fault = match p.value(0)? {
            Value::Struct(s) => match (s.get("faultCode"), s.get("faultString")) {
                (Some(Value::Int(code)), Some(Value::String(message))) => Fault {
                    code: *code,
                    message: message.clone(),
                },
                _ => return Err(XmlRpcError::BadFault),
            },
            _ => return Err(XmlRpcError::BadFault),
        };
        p.close("fault")?;
        MethodResponse::Fault(fault)
    } else {
        p.open("params")?;
        // A method without a result (`requester.cancelTransaction` is `void`) may answer
        // no `<param>` at all; it reads as nil.
        let value = if p.next_is_open("param")? {
            p.open("param")?;
            let value = p.value(0)?;
            p.close("param")?;
            value
        } else {
            Value::Nil
        };
        p.close("params")?;
        MethodResponse::Success(value)
    };
    p.close("methodResponse")?;
    p.end_of_document()?;
    Ok(response)
}

/// What the parser works with: elements by local name and text with references resolved.
/// Empty elements arrive as an open and a close (quick-xml's `expand_empty_elements`).
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open(String),
    Close(String),
    Text(String),
    End,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Open(n) => write!(f, "<{n}>"),
            Token::Close(n) => write!(f, "</{n}>"),
            Token::Text(t) => {
                let short: String = t.chars().take(40).collect();
                write!(f, "text {short:?}")
            }
            Token::End => f.write_str("the end of the document"),
        }
    }
}

struct Parser<'a> {
    reader: Reader<&'a [u8]>,
    peeked: Option<Token>,
}

impl<'a> Parser<'a> {
    fn new(xml: &'a [u8]) -> Result<Self, XmlRpcError> {
        // quick-xml reads `&str`; XML-RPC bodies are UTF-8 (checked against the declaration).
        let xml = std::str::from_utf8(xml)
            .map_err(|e| XmlRpcError::Xml(format!("the body is not UTF-8 ({e})")))?;
        let mut reader = Reader::from_str(xml);
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.trim_text(false);
        Ok(Parser {
            reader,
            peeked: None,
        })
    }

    /// The next token, with adjacent text, CDATA and references merged into one text.
    fn raw_next(&mut self) -> Result<Token, XmlRpcError> {
        if let Some(t) = self.peeked.take() {
            return Ok(t);
        }
        let mut text: Option<String> = None;
        loop {
            let position = self.reader.buffer_position();
            let event = self
                .reader
                .read_event()
                .map_err(|e| XmlRpcError::Xml(format!("{e} (at byte {position})")))?;
            let token = match event {
                Event::Text(t) => {
                    text.get_or_insert_with(String::new)
                        .push_str(&t.xml10_content());
                    continue;
                }
                Event::CData(c) => {
                    text.get_or_insert_with(String::new)
                        .push_str(&c.into_inner());
                    continue;
                }
                Event::GeneralRef(r) => {
                    let ch = match r.resolve_char_ref() {
                        Ok(Some(ch)) => ch,
                        Ok(None) => match &*r {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            other => {
                                return Err(XmlRpcError::Xml(format!(
                                    "unknown entity &{other}; (at byte {position})"
                                )))
                            }
                        },
                        Err(e) => return Err(XmlRpcError::Xml(e.to_string())),
                    };
                    text.get_or_insert_with(String::new).push(ch);
                    continue;
                }
                Event::Start(s) => Token::Open(local_name(s.name().0)),
                Event::End(e) => Token::Close(local_name(e.name().0)),
                // Expanded into Start + End by the configuration; kept for completeness.
                Event::Empty(s) => {
                    let name = local_name(s.name().0);
                    self.peeked = Some(Token::Close(name.clone()));
                    Token::Open(name)
                }
                Event::Decl(d) => {
                    if let Some(Ok(encoding)) = d.encoding() {
                        let encoding = encoding.to_ascii_lowercase();
                        if encoding != "utf-8" && encoding != "utf8" {
                            return Err(XmlRpcError::Xml(format!(
                                "unsupported encoding {encoding:?}; XML-RPC bodies must be UTF-8"
                            )));
                        }
                    }
                    continue;
                }
                Event::DocType(_) => {
                    return Err(XmlRpcError::Xml(
                        "a DOCTYPE is not allowed in XML-RPC".to_owned(),
                    ))
                }
                Event::Comment(_) | Event::PI(_) => continue,
                Event::Eof => Token::End,
            };
            return Ok(match text {
                Some(t) => {
                    self.peeked = Some(token);
                    Token::Text(t)
                }
                None => token,
            });
        }
    }

    /// The next token that is not whitespace between elements.
    fn next(&mut self) -> Result<Token, XmlRpcError> {
        loop {
            match self.raw_next()? {
                Token::Text(t) if t.trim().is_empty() => continue,
                other => return Ok(other),
            }
        }
    }

    fn peek(&mut self) -> Result<&Token, XmlRpcError> {
        let token = self.next()?;
        Ok(self.peeked.insert(token))
    }

    fn next_is_open(&mut self, name: &str) -> Result<bool, XmlRpcError> {
        Ok(matches!(self.peek()?, Token::Open(n) if n == name))
    }

    fn open(&mut self, name: &str) -> Result<(), XmlRpcError> {
        match self.next()? {
            Token::Open(n) if n == name => Ok(()),
            other => Err(unexpected(format!("<{name}>"), &other)),
        }
    }

    fn close(&mut self, name: &str) -> Result<(), XmlRpcError> {
        match self.next()? {
            Token::Close(n) if n == name => Ok(()),
            other => Err(unexpected(format!("</{name}>"), &other)),
        }
    }

    /// The text of an element whose opening tag was just read, up to its closing tag.
    fn text_until_close(&mut self, name: &str) -> Result<String, XmlRpcError> {
        match self.raw_next()? {
            Token::Text(t) => {
                self.close(name)?;
                Ok(t)
            }
            Token::Close(n) if n == name => Ok(String::new()),
            other => Err(unexpected(format!("text or </{name}>"), &other)),
        }
    }

    fn end_of_document(&mut self) -> Result<(), XmlRpcError> {
        match self.next()? {
            Token::End => Ok(()),
            other => Err(unexpected("the end of the document".to_owned(), &other)),
        }
    }

    /// A `<value>…</value>`.
    fn value(&mut self, depth: usize) -> Result<Value, XmlRpcError> {
        if depth > MAX_DEPTH {
            return Err(XmlRpcError::TooDeep);
        }
        self.open("value")?;
        let first = self.raw_next()?;
        let (leading, typed) = match first {
            Token::Close(n) if n == "value" => return Ok(Value::String(String::new())),
            Token::Text(t) => match self.raw_next()? {
                // Untyped content is a string, whitespace included.
                Token::Close(n) if n == "value" => return Ok(Value::String(t)),
                Token::Open(n) if t.trim().is_empty() => (t, n),
                other => return Err(unexpected("</value> or a type element".into(), &other)),
            },
            Token::Open(n) => (String::new(), n),
            other => return Err(unexpected("a type element or text".into(), &other)),
        };
        debug_assert!(leading.trim().is_empty());
        let value = match typed.as_str() {
            "i4" | "int" => {
                let text = self.text_until_close(&typed)?;
                let trimmed = text.trim();
                Value::Int(trimmed.parse().map_err(|_| XmlRpcError::InvalidValue {
                    kind: "int",
                    text: trimmed.to_owned(),
                })?)
            }
            "boolean" => {
                let text = self.text_until_close(&typed)?;
                Value::Boolean(match text.trim() {
                    "1" => true,
                    "0" => false,
                    other => {
                        return Err(XmlRpcError::InvalidValue {
                            kind: "boolean",
                            text: other.to_owned(),
                        })
                    }
                })
            }
            "string" => Value::String(self.text_until_close(&typed)?),
            "double" => {
                let text = self.text_until_close(&typed)?;
                let trimmed = text.trim();
                let d: f64 = trimmed.parse().map_err(|_| XmlRpcError::InvalidValue {
                    kind: "double",
                    text: trimmed.to_owned(),
                })?;
                if !d.is_finite() {
                    return Err(XmlRpcError::InvalidValue {
                        kind: "double",
                        text: trimmed.to_owned(),
                    });
                }
                Value::Double(d)
            }
            "dateTime.iso8601" => {
                let text = self.text_until_close(&typed)?;
                Value::DateTime(DateTime::parse(&text).ok_or_else(|| {
                    XmlRpcError::InvalidValue {
                        kind: "dateTime.iso8601",
                        text: text.trim().to_owned(),
                    }
                })?)
            }
            "base64" => {
                let text = self.text_until_close(&typed)?;
                let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                Value::Base64(LENIENT_BASE64.decode(compact.as_bytes()).map_err(|e| {
                    XmlRpcError::InvalidValue {
                        kind: "base64",
                        text: format!("{e}"),
                    }
                })?)
            }
            "struct" => {
                let mut s = Struct::new();
                while self.next_is_open("member")? {
                    self.open("member")?;
                    self.open("name")?;
                    let name = self.text_until_close("name")?;
                    let v = self.value(depth + 1)?;
                    self.close("member")?;
                    s.push(&name, v);
                }
                self.close("struct")?;
                Value::Struct(s)
            }
            "array" => {
                let mut items = Vec::new();
                self.open("data")?;
                while self.next_is_open("value")? {
                    items.push(self.value(depth + 1)?);
                }
                self.close("data")?;
                self.close("array")?;
                Value::Array(items)
            }
            "nil" => {
                self.close("nil")?;
                Value::Nil
            }
            other => {
                return Err(XmlRpcError::Unexpected {
                    expected: "an XML-RPC type (i4, int, boolean, string, double, \
                               dateTime.iso8601, base64, struct, array, nil)"
                        .to_owned(),
                    found: format!("<{other}>"),
                })
            }
        };
        self.close("value")?;
        Ok(value)
    }
}

fn local_name(raw: &str) -> String {
    raw.rsplit(':').next().unwrap_or(raw).to_owned()
}

fn unexpected(expected: String, found: &Token) -> XmlRpcError {
    XmlRpcError::Unexpected {
        expected,
        found: found.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/emulators/fixtures/universign"
    );

    fn sample(name: &str) -> Vec<u8> {
        std::fs::read(format!("{SAMPLES}/{name}")).unwrap()
    }

    /// The samples' requests were written by Ruby's client: another declaration and a
    /// trailing newline, otherwise the same bytes as ours.
    fn normalise_request(xml: &[u8]) -> String {
        String::from_utf8(xml.to_vec())
            .unwrap()
            .replace(
                "<?xml version=\"1.0\" ?>",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            )
            .trim_end()
            .to_owned()
    }

    #[test]
    fn recorded_responses_re_encode_byte_for_byte() {
        for name in [
            "get_documents.response.xml",
            "get_transaction_info_completed.response.xml",
            "get_transaction_info_completed_2015.response.xml",
            "get_transaction_info_ready.response.xml",
            "request_transaction.response.xml",
        ] {
            let xml = sample(name);
            let decoded = decode_response(&xml).unwrap_or_else(|e| panic!("{name}: {e}"));
            let encoded = encode_response(&decoded).unwrap();
            assert_eq!(encoded, String::from_utf8(xml).unwrap(), "{name}");
        }
    }

    #[test]
    fn recorded_requests_round_trip() {
        for name in [
            "get_documents.request.xml",
            "get_transaction_info_completed.request.xml",
            "get_transaction_info_completed_2015.request.xml",
            "get_transaction_info_ready.request.xml",
            "request_transaction.request.xml",
        ] {
            let xml = sample(name);
            let decoded = decode_call(&xml).unwrap_or_else(|e| panic!("{name}: {e}"));
            let encoded = encode_call(&decoded).unwrap();
            assert_eq!(decode_call(encoded.as_bytes()).unwrap(), decoded, "{name}");
            if name != "request_transaction.request.xml" {
                assert_eq!(encoded, normalise_request(&xml), "{name}");
            }
        }
    }

    #[test]
    fn recorded_values_decode_to_the_right_types() {
        let call = decode_call(&sample("request_transaction.request.xml")).unwrap();
        assert_eq!(call.method, "requester.requestTransaction");
        let s = call.params[0].as_struct().unwrap();
        assert_eq!(s.get("handwrittenSignatureMode"), Some(&Value::Int(1)));
        assert_eq!(s.get("finalDocSent"), Some(&Value::Boolean(true)));
        assert_eq!(s.get("chainingMode").and_then(Value::as_str), Some("none"));
        let doc = s.get("documents").unwrap().as_array().unwrap()[0]
            .as_struct()
            .unwrap();
        // Base64 split over four lines of 60 characters: 240 characters, 180 bytes.
        let pdf = doc.get("content").unwrap().as_bytes().unwrap();
        assert_eq!(pdf.len(), 180);
        assert!(pdf.starts_with(b"%PDF-1.5"));
        let signer = s.get("signers").unwrap().as_array().unwrap()[0]
            .as_struct()
            .unwrap();
        assert_eq!(
            signer.get("firstname").and_then(Value::as_str),
            Some("Signer's first name")
        );

        let MethodResponse::Success(info) =
            decode_response(&sample("get_transaction_info_completed.response.xml")).unwrap()
        else {
            panic!("fault")
        };
        let info = info.as_struct().unwrap();
        assert_eq!(
            info.get("status").and_then(Value::as_str),
            Some("completed")
        );
        assert_eq!(info.get("currentSigner"), Some(&Value::Int(0)));
        assert_eq!(info.get("eachField"), Some(&Value::Boolean(false)));
        let created = info
            .get("creationDate")
            .and_then(Value::as_datetime)
            .unwrap();
        assert_eq!(created.to_string(), "2020-09-24T13:31:21");
        let signer = info.get("signerInfos").unwrap().as_array().unwrap()[0]
            .as_struct()
            .unwrap();
        assert_eq!(
            signer.get("firstName").and_then(Value::as_str),
            Some("Belg prén")
        );

        let MethodResponse::Success(docs) =
            decode_response(&sample("get_documents.response.xml")).unwrap()
        else {
            panic!("fault")
        };
        let doc = docs.as_array().unwrap()[0].as_struct().unwrap();
        assert_eq!(doc.get("id"), Some(&Value::Int(1_918_702)));
        assert!(doc
            .get("content")
            .and_then(Value::as_bytes)
            .unwrap()
            .starts_with(b"%PDF-1.7"));
        let meta = doc.get("metaData").unwrap().as_struct().unwrap();
        assert_eq!(meta.get("size"), Some(&Value::Int(1_215_308)));
    }

    #[test]
    fn every_type_round_trips() {
        let value = Value::Struct(
            Struct::new()
                .with("int", -42)
                .with("bool", true)
                .with("text", "a < b & c > d, l'été \"quoted\"\r\nnext")
                .with("empty", "")
                .with("double", Value::Double(-12.214))
                .with("whole", Value::Double(3.0))
                .with(
                    "when",
                    Value::DateTime(DateTime::parse("19980717T14:08:55").unwrap()),
                )
                .with("bytes", Value::Base64(vec![0, 1, 2, 253, 254, 255]))
                .with("nothing", Value::Nil)
                .with(
                    "list",
                    vec![Value::Int(1), Value::from("two"), Value::Array(vec![])],
                )
                .with("nested", Struct::new()),
        );
        let call = MethodCall {
            method: "examples.everything".into(),
            params: vec![value.clone(), Value::Int(i32::MIN)],
        };
        let xml = encode_call(&call).unwrap();
        assert_eq!(decode_call(xml.as_bytes()).unwrap(), call);
        let response = MethodResponse::Success(value);
        let xml = encode_response(&response).unwrap();
        assert_eq!(decode_response(xml.as_bytes()).unwrap(), response);
        assert!(xml.contains("<value><nil/></value>"), "{xml}");
        assert!(xml.contains("&#13;"), "carriage returns survive: {xml}");
    }

    #[test]
    fn faults_round_trip() {
        let fault = MethodResponse::Fault(Fault {
            code: 73010,
            message: "Invalid login or password".into(),
        });
        let xml = encode_response(&fault).unwrap();
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><methodResponse><fault><value><struct>\
             <member><name>faultCode</name><value><i4>73010</i4></value></member>\
             <member><name>faultString</name><value><string>Invalid login or password</string>\
             </value></member></struct></value></fault></methodResponse>"
        );
        assert_eq!(decode_response(xml.as_bytes()).unwrap(), fault);
    }

    #[test]
    fn lenient_where_servers_differ() {
        let xml = r#"<?xml version='1.0' encoding='utf-8'?>
<!-- written by hand -->
<methodResponse>
  <params>
    <param>
      <value><struct>
        <member><name>plain</name><value>  untyped text  </value></member>
        <member><name>int</name><value><int> 7 </int></value></member>
        <member><name>dashed</name><value><dateTime.iso8601>2024-03-01T10:22:05</dateTime.iso8601></value></member>
        <member><name>nil</name><value><ex:nil xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions"/></value></member>
        <member><name>unpadded</name><value><base64>
          YWI
        </base64></value></member>
        <member><name>refs</name><value><string>&#233;&#x20AC;&amp;<![CDATA[<raw>]]></string></value></member>
        <member><name>emptyvalue</name><value/></member>
      </struct></value>
    </param>
  </params>
</methodResponse>
"#;
        let MethodResponse::Success(Value::Struct(s)) = decode_response(xml.as_bytes()).unwrap()
        else {
            panic!("not a struct")
        };
        assert_eq!(s.get("plain"), Some(&Value::from("  untyped text  ")));
        assert_eq!(s.get("int"), Some(&Value::Int(7)));
        assert_eq!(
            s.get("dashed")
                .and_then(Value::as_datetime)
                .unwrap()
                .to_xmlrpc(),
            "20240301T10:22:05"
        );
        assert_eq!(s.get("nil"), Some(&Value::Nil));
        assert_eq!(
            s.get("unpadded").and_then(Value::as_bytes),
            Some(&b"ab"[..])
        );
        assert_eq!(s.get("refs"), Some(&Value::from("é€&<raw>")));
        assert_eq!(s.get("emptyvalue"), Some(&Value::from("")));
    }

    #[test]
    fn refusals_say_what_was_expected() {
        let cases: &[(&str, &str)] = &[
            ("<html><body>Bad gateway</body></html>", "expected <methodResponse>, found <html>"),
            ("<methodResponse><params><param><value><i4>x</i4></value></param></params></methodResponse>", "invalid <int> value \"x\""),
            ("<methodResponse><params><param><value><boolean>true</boolean></value></param></params></methodResponse>", "invalid <boolean> value"),
            ("<methodResponse><params><param><value><i4>99999999999</i4></value></param></params></methodResponse>", "invalid <int>"),
            ("<methodResponse><params><param><value><double>NaN</double></value></param></params></methodResponse>", "invalid <double>"),
            ("<methodResponse><params><param><value><dateTime.iso8601>yesterday</dateTime.iso8601></value></param></params></methodResponse>", "invalid <dateTime.iso8601>"),
            ("<methodResponse><params><param><value><base64>!!!</base64></value></param></params></methodResponse>", "invalid <base64>"),
            ("<methodResponse><params><param><value><i8>1</i8></value></param></params></methodResponse>", "found <i8>"),
            ("<methodResponse><params><param><value><string>a</value></param></params></methodResponse>", "not well-formed XML"),
            ("<methodResponse><params><param><value><string>&custom;</string></value></param></params></methodResponse>", "unknown entity &custom;"),
            ("<!DOCTYPE x [<!ENTITY a 'b'>]><methodResponse/>", "DOCTYPE"),
            ("<methodResponse><params><param><value><string>a</string></value></param></params></methodResponse><extra/>", "expected the end of the document, found <extra>"),
            ("<methodResponse><fault><value><string>oops</string></value></fault></methodResponse>", "faultCode"),
            ("<methodResponse><params><param><value><struct><member><value><i4>1</i4></value></member></struct></value></param></params></methodResponse>", "expected <name>, found <value>"),
            ("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><methodResponse/>", "unsupported encoding"),
        ];
        for (xml, needle) in cases {
            let e = decode_response(xml.as_bytes()).unwrap_err().to_string();
            assert!(
                e.contains(needle),
                "{xml}\n -> {e}\n does not contain {needle:?}"
            );
        }
        assert!(decode_response(b"\xff\xfe")
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
        assert!(encode_response(&MethodResponse::Success(Value::Double(f64::NAN))).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let depth = MAX_DEPTH + 5;
        let xml = format!(
            "<methodResponse><params><param>{}<value><i4>1</i4></value>{}</param></params></methodResponse>",
            "<value><array><data>".repeat(depth),
            "</data></array></value>".repeat(depth)
        );
        assert_eq!(
            decode_response(xml.as_bytes()).unwrap_err(),
            XmlRpcError::TooDeep
        );
    }

    #[test]
    fn calls_without_params_decode() {
        let call =
            decode_call(b"<methodCall><methodName>system.listMethods</methodName></methodCall>")
                .unwrap();
        assert_eq!(call.method, "system.listMethods");
        assert!(call.params.is_empty());
    }

    #[test]
    fn dates_parse_both_forms_and_refuse_nonsense() {
        let d = DateTime::parse("20200924T13:31:54").unwrap();
        assert_eq!(d.to_string(), "2020-09-24T13:31:54");
        assert_eq!(DateTime::parse("2020-09-24T13:31:54"), Some(d));
        assert_eq!(DateTime::parse("20200924T133154"), Some(d));
        for bad in [
            "2020092413:31:54",
            "20201324T13:31:54",
            "20200924T25:00:00",
            "2020-0924T13:31:54",
            "abcdefghT13:31:54",
        ] {
            assert_eq!(DateTime::parse(bad), None, "{bad}");
        }
    }
}
