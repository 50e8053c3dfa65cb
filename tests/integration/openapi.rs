//! docs/openapi.json is the description the code generates (`GET /openapi.json` serves the same),
//! and it stays in step with the router in functions/api/src/lib.rs, both ways: every documented
//! operation is routed, and every route is documented.

use refwire_tests::TestApp;
use serde_json::Value;
use std::collections::BTreeSet;

/// The command that rewrites docs/openapi.json from the code.
const REGENERATE: &str =
    "REFWIRE_WRITE_OPENAPI=1 cargo test -p refwire-tests --test integration openapi";
const OPENAPI_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
const ROUTER_SOURCE: &str = include_str!("../../functions/api/src/lib.rs");

/// The keys of an OpenAPI path item that are operations (the others are `parameters`, `summary`, ...).
/// axum's method routers have the same names.
const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// A path as written in the router and in OpenAPI (both use `{param}`), and a lower-case method.
type Endpoint = (String, String);

/// The generated description as committed: pretty-printed, with a final newline.
fn generated() -> String {
    let description = refwire_api::openapi_description();
    serde_json::to_string_pretty(&description).expect("the description serializes") + "\n"
}

/// The committed docs/openapi.json, read at run time so that it is the file as regenerated.
fn openapi() -> Value {
    let text = std::fs::read_to_string(OPENAPI_PATH).expect("docs/openapi.json is readable");
    serde_json::from_str(&text).expect("docs/openapi.json is valid JSON")
}

#[test]
fn the_committed_description_is_the_generated_one() {
    let generated = generated();
    if std::env::var_os("REFWIRE_WRITE_OPENAPI").is_some() {
        // Renamed into place, so the other tests of this run never read half a file.
        let partial = format!("{OPENAPI_PATH}.partial");
        std::fs::write(&partial, &generated).expect("docs/ is writable");
        std::fs::rename(&partial, OPENAPI_PATH).expect("docs/openapi.json is replaceable");
        return;
    }
    let committed = std::fs::read_to_string(OPENAPI_PATH).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json differs from what the code generates; regenerate it with\n  {REGENERATE}"
    );
}

#[tokio::test]
async fn the_router_serves_the_description_without_a_key() {
    let t = TestApp::new().await;
    let response = t.call("GET", "/openapi.json", None, None).await;
    assert_eq!(response.status, 200, "{:?}", response.body);
    let generated: Value = serde_json::from_str(&generated()).unwrap();
    assert_eq!(response.body, generated);
}

/// Every operation in the description: its path, method and operation object.
fn documented_operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let paths = doc["paths"]
        .as_object()
        .expect("docs/openapi.json has a `paths` object");
    let mut operations = Vec::new();
    for (path, item) in paths {
        for method in HTTP_METHODS {
            if let Some(operation) = item.get(method) {
                operations.push((path.clone(), method.to_string(), operation));
            }
        }
    }
    operations
}

fn documented_endpoints(doc: &Value) -> BTreeSet<Endpoint> {
    documented_operations(doc)
        .into_iter()
        .map(|(path, method, _)| (path, method))
        .collect()
}

/// Follows a local `$ref` (`#/components/...`); any other value is returned as it is.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => doc
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{reference} does not resolve")),
        None => value,
    }
}

/// `/v1/webhooks/{id}/test` -> `/v1/webhooks/x/test`.
fn with_placeholder_params(path: &str) -> String {
    let mut concrete = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => in_param = true,
            '}' => {
                in_param = false;
                concrete.push('x');
            }
            _ if !in_param => concrete.push(c),
            _ => {}
        }
    }
    concrete
}

// --- reading the routes out of lib.rs ---------------------------------------------------------

/// `source` with comments and the contents of string literals replaced by spaces (quotes kept), so
/// byte offsets still match `source` and nothing inside a string or comment looks like code.
/// Plain string literals and `//` and `/* */` comments are all the router source uses.
fn blank_comments_and_strings(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut code = bytes.to_vec();
    let mut i = 0;
    while i < bytes.len() {
        let end = match (bytes[i], bytes.get(i + 1)) {
            (b'"', _) => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                code[i + 1..j.min(bytes.len())].fill(b' ');
                j + 1
            }
            (b'/', Some(b'/')) => {
                let j = source[i..].find('\n').map_or(bytes.len(), |n| i + n);
                code[i..j].fill(b' ');
                j
            }
            (b'/', Some(b'*')) => {
                let j = source[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
                code[i..j].fill(b' ');
                j
            }
            _ => i + 1,
        };
        i = end.min(bytes.len());
    }
    String::from_utf8(code).expect("blanking whole characters keeps UTF-8")
}

/// The offset of the `)` that closes the parenthesis opened just before `start`.
fn closing_paren(code: &str, start: usize) -> usize {
    let mut depth = 1;
    for (offset, byte) in code[start..].bytes().enumerate() {
        match byte {
            b'(' => depth += 1,
            b')' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return start + offset;
        }
    }
    panic!("unbalanced parentheses after offset {start} in lib.rs");
}

/// Names called as functions or methods in `code` (`get(`, `.patch(`), but not paths such as
/// `webhooks::delete`: a handler is named, not called, so it is followed by `)` or `,`.
fn called_names(code: &str) -> Vec<&str> {
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = code.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_ident(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        let called = code[i..].trim_start().starts_with('(');
        let qualified = code[..start].trim_end().ends_with("::");
        if called && !qualified {
            names.push(&code[start..i]);
        }
    }
    names
}

/// Every `.route("PATH", get(..).post(..))` in the router source, one endpoint per method.
fn routes_in_router_source(source: &str) -> Vec<Endpoint> {
    const ROUTE_CALL: &str = ".route(";
    let code = blank_comments_and_strings(source);
    let mut endpoints = Vec::new();
    let mut search_from = 0;
    while let Some(found) = code[search_from..].find(ROUTE_CALL) {
        let args_start = search_from + found + ROUTE_CALL.len();
        let args_end = closing_paren(&code, args_start);
        let args = &code[args_start..args_end];

        // The path is the first string literal: its quotes survive blanking, its text is in `source`.
        let open_quote = args_start + args.find('"').expect("a route path literal");
        let close_quote = open_quote + 1 + code[open_quote + 1..].find('"').unwrap();
        let path = &source[open_quote + 1..close_quote];

        let calls = called_names(args);
        assert!(
            !calls.iter().any(|name| ["any", "on"].contains(name)),
            "route {path} uses `any`/`on`; teach this parser which methods that routes"
        );
        let methods: Vec<&str> = calls
            .into_iter()
            .filter(|name| HTTP_METHODS.contains(name))
            .collect();
        assert!(
            !methods.is_empty(),
            "found no method handler for route {path}"
        );
        for method in methods {
            endpoints.push((path.to_string(), method.to_string()));
        }
        search_from = args_end;
    }
    endpoints
}

fn endpoint(path: &str, method: &str) -> Endpoint {
    (path.to_string(), method.to_string())
}

#[test]
fn the_route_parser_reads_chained_multi_line_routes_and_ignores_comments_and_strings() {
    let source = r#"
        Router::new()
            // .route("/commented-out", get(gone))
            .route("/health", get(|| async { Json(json!({"text": ".route(\"/in-a-string\", post(x))"})) }))
            .route(
                "/v1/things/{id}",
                get(things::get)
                    .patch(things::update)
                    .delete(things::delete),
            )
            /* .route("/block-comment", put(nothing)) */
            .route("/v1/things/{id}/poke", post(things::poke))
    "#;
    assert_eq!(
        routes_in_router_source(source),
        vec![
            endpoint("/health", "get"),
            endpoint("/v1/things/{id}", "get"),
            endpoint("/v1/things/{id}", "patch"),
            endpoint("/v1/things/{id}", "delete"),
            endpoint("/v1/things/{id}/poke", "post"),
        ]
    );
}

#[test]
fn the_route_parser_sees_every_route_of_the_router() {
    // The dashboard's pages and the widget script are HTML and JavaScript, not API operations
    // (docs/dashboard.md describes them); everything else must be a `.route(` here.
    let code = blank_comments_and_strings(ROUTER_SOURCE).replace(".merge(dashboard::routes())", "");
    // Routes added any other way would escape the check that every route is documented.
    for other_registration in [".nest(", ".merge(", ".route_service(", ".nest_service("] {
        assert!(
            !code.contains(other_registration),
            "lib.rs now uses `{other_registration}`; teach this parser about it"
        );
    }
    let routes = routes_in_router_source(ROUTER_SOURCE);
    assert!(
        routes.iter().all(|(path, _)| path.starts_with('/')),
        "{routes:?}"
    );
    // Spot checks: a one-line route, and a method chained on a later line of a multi-line one.
    assert!(routes.contains(&endpoint("/health", "get")), "{routes:?}");
    assert!(
        routes.contains(&endpoint("/v1/webhooks/{id}", "delete")),
        "{routes:?}"
    );
}

// --- the description and the router agree ------------------------------------------------------

#[test]
fn every_route_in_the_router_is_documented() {
    let documented = documented_endpoints(&openapi());
    let undocumented: Vec<String> = routes_in_router_source(ROUTER_SOURCE)
        .into_iter()
        .filter(|route| !documented.contains(route))
        .map(|(path, method)| format!("{} {path}", method.to_uppercase()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "routed in functions/api/src/lib.rs but missing from docs/openapi.json: {undocumented:#?}"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let t = TestApp::new().await;
    let doc = openapi();
    let mut unrouted = Vec::new();
    for (path, method, _) in documented_operations(&doc) {
        let method = method.to_uppercase();
        let response = t
            .call(
                &method,
                &with_placeholder_params(&path),
                Some(&t.secret_key),
                None,
            )
            .await;
        // Handlers answer anything (200, 400 for the missing body, 401 on operator routes, their own
        // 404 "webhook not found", ...); only the router's fallbacks mean "no such route".
        let error = &response.body["error"];
        let message = error["message"].as_str().unwrap_or_default();
        let no_route = response.status == 404
            && error["code"] == "not_found"
            && message.starts_with("no route for");
        let method_not_allowed = response.status == 405 && error["code"] == "method_not_allowed";
        if no_route || method_not_allowed {
            unrouted.push(format!("{method} {path}: {} {message}", response.status));
        }
    }
    assert!(
        unrouted.is_empty(),
        "in docs/openapi.json but not served by the router: {unrouted:#?}"
    );
}

// --- the description is well-formed ---------------------------------------------------------------

#[test]
fn the_description_is_openapi_3_1_for_this_version() {
    let doc = openapi();
    let openapi_version = doc["openapi"].as_str().unwrap_or_default();
    assert!(openapi_version.starts_with("3.1"), "{openapi_version}");
    assert_eq!(doc["info"]["title"], "Refwire API");
    // The tests crate shares the workspace version.
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn every_operation_has_a_success_response() {
    let doc = openapi();
    for (path, method, operation) in documented_operations(&doc) {
        let responses = operation["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} has no responses"));
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{method} {path} has no 2xx response"
        );
    }
}

#[test]
fn every_ref_resolves() {
    fn check_refs(doc: &Value, value: &Value) {
        match value {
            Value::Object(object) => {
                if let Some(reference) = object.get("$ref") {
                    resolve(doc, value);
                    assert!(reference.as_str().is_some_and(|r| r.starts_with("#/")));
                }
                object.values().for_each(|child| check_refs(doc, child));
            }
            Value::Array(items) => items.iter().for_each(|child| check_refs(doc, child)),
            _ => {}
        }
    }
    let doc = openapi();
    check_refs(&doc, &doc);
}

#[test]
fn every_path_parameter_is_declared() {
    let doc = openapi();
    for (path, method, operation) in documented_operations(&doc) {
        let path_item = &doc["paths"][&path];
        let declared: BTreeSet<&str> = [&path_item["parameters"], &operation["parameters"]]
            .into_iter()
            .filter_map(Value::as_array)
            .flatten()
            .map(|parameter| resolve(&doc, parameter))
            .filter(|parameter| parameter["in"] == "path")
            .filter_map(|parameter| parameter["name"].as_str())
            .collect();
        let in_template: BTreeSet<&str> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert_eq!(declared, in_template, "path parameters of {method} {path}");
    }
}
