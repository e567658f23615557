//! The GraphiQL playground, served from this binary with no CDN: the page
//! (at `GET /graphql`, see [`page`]) and its scripts, styles, fonts and
//! editor workers (at `/graphiql/<version>/<file>`, see [`routes`]).
//!
//! The files are built from `graphiql/` (`graphiql/build.sh`) into
//! `assets/graphiql/` under fixed names and embedded here at compile time,
//! so building the server needs no Node.js. `<version>` is a hash of their
//! contents: a new build gets new URLs, so browsers may cache the assets
//! for a year without ever mixing files of two builds; any other version
//! is not found.
//!
//! The bundle is 7 MB; compressing it per response cost about 170 ms of CPU
//! (brotli) on every request, with no credential needed, and compressing it
//! once at start-up raised the server's peak memory by about 45 MiB. The
//! build writes each asset's brotli and gzip forms beside it
//! (`graphiql/compress.mjs`), and they are embedded and served as they are.

use std::hash::{DefaultHasher, Hasher};
use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Where the assets are served; the page refers to them under this prefix.
const PREFIX: &str = "/graphiql";

/// The policy of the page: everything from this server only. Styles need
/// 'unsafe-inline' because Monaco and React set `<style>` elements and style
/// attributes at run time (without it Chromium refuses dozens of them and the
/// editors break). GraphiQL's fonts and Monaco's error underlines are
/// `data:` URLs inside the bundled stylesheets. No 'unsafe-eval' and no
/// inline scripts.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
     script-src 'self'; \
     worker-src 'self'; \
     style-src 'self' 'unsafe-inline'; \
     font-src 'self' data:; \
     img-src 'self' data:; \
     connect-src 'self'; \
     manifest-src 'self'; \
     base-uri 'none'; \
     form-action 'none'; \
     frame-ancestors 'none'";

/// One embedded file of `assets/graphiql/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    brotli: &'static [u8],
    gzip: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../assets/graphiql/", $name)),
            brotli: include_bytes!(concat!("../assets/graphiql/", $name, ".br")),
            gzip: include_bytes!(concat!("../assets/graphiql/", $name, ".gz")),
        }
    };
}

/// Every file the build writes but `index.html` (which is [`page`]). A test
/// checks that this list and the folder agree.
const ASSETS: &[Asset] = &[
    asset!("graphiql.js", "text/javascript; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("editor.worker.js", "text/javascript; charset=utf-8"),
    asset!("graphql.worker.js", "text/javascript; charset=utf-8"),
    asset!("json.worker.js", "text/javascript; charset=utf-8"),
    asset!("codicon.ttf", "font/ttf"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// The page as built, referring to its assets relatively (`"./graphiql.js"`).
const INDEX_HTML: &str = include_str!("../assets/graphiql/index.html");

/// A hash of all the assets: the path segment that makes their URLs change
/// whenever their contents do. (`DefaultHasher::new()` has fixed keys, so
/// every process of one binary agrees.)
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = DefaultHasher::new();
    for asset in ASSETS {
        hasher.write(asset.name.as_bytes());
        hasher.write_usize(asset.bytes.len());
        hasher.write(asset.bytes);
    }
    hasher.write(INDEX_HTML.as_bytes());
    format!("{:016x}", hasher.finish())
});

/// Which stored encoding to send for an `Accept-Encoding` header.
fn preferred_encoding(headers: &HeaderMap) -> Option<&'static str> {
    let accepted: Vec<(String, f32)> = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse().ok())
                .unwrap_or(1.0);
            (name, quality)
        })
        .collect();
    let quality = |name: &str| {
        accepted
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, q)| *q)
            .unwrap_or(0.0)
    };
    // `max_by` keeps the last of equals: brotli wins a tie.
    ["gzip", "br"]
        .into_iter()
        .filter(|name| quality(name) > 0.0)
        .max_by(|a, b| quality(a).total_cmp(&quality(b)))
}

/// The page with its asset references pointing at this build's URLs.
static PAGE: LazyLock<String> =
    LazyLock::new(|| INDEX_HTML.replace("=\"./", &format!("=\"{PREFIX}/{}/", *VERSION)));

/// The GraphiQL page, with its security headers. It is small and names this
/// build's assets, so browsers revalidate it every time.
pub fn page() -> Response {
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache, private"),
            ),
        ],
        PAGE.as_str(),
    )
        .into_response()
}

/// The routes serving the page's assets, to merge into the application's
/// router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route(&format!("{PREFIX}/{{version}}/{{file}}"), get(asset))
}

async fn asset(Path((version, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let found = ASSETS.iter().position(|a| a.name == file);
    let (Some(index), true) = (found, version == *VERSION) else {
        return (
            StatusCode::NOT_FOUND,
            [(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            )],
            "not found",
        )
            .into_response();
    };
    let asset = &ASSETS[index];
    let cache_control = "public, max-age=31536000, immutable";
    let etag = format!("\"{}\"", *VERSION);
    let etag = HeaderValue::from_str(&etag).expect("a hex string is a valid header value");
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
    let common = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        ),
        (header::ETAG, etag),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::VARY, HeaderValue::from_static("accept-encoding")),
    ];
    if not_modified {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let encoded = preferred_encoding(&headers).map(|encoding| match encoding {
        "br" => (encoding, asset.brotli),
        _ => (encoding, asset.gzip),
    });
    let content_type = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    )];
    match encoded {
        Some((encoding, bytes)) => (
            StatusCode::OK,
            common,
            content_type,
            [(header::CONTENT_ENCODING, HeaderValue::from_static(encoding))],
            bytes,
        )
            .into_response(),
        None => (StatusCode::OK, common, content_type, asset.bytes).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    fn app() -> Router {
        routes()
    }

    async fn get(uri: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        app()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[test]
    fn every_built_file_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/graphiql");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name != "index.html")
            .filter(|name| !name.ends_with(".br") && !name.ends_with(".gz"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "assets/graphiql/ and ASSETS in src/graphiql.rs disagree; rebuild with graphiql/build.sh and update ASSETS"
        );
    }

    #[test]
    fn the_page_refers_only_to_this_builds_assets() {
        let page = PAGE.as_str();
        assert!(page.contains("<title>VoIPbin customer API</title>"));
        assert!(!page.contains("=\"./"), "a relative reference was left");
        for url in page
            .split(['"', '\''])
            .filter(|s| s.starts_with('/') || s.contains("://"))
        {
            let file = url
                .strip_prefix(&format!("{PREFIX}/{}/", *VERSION))
                .unwrap_or_else(|| panic!("the page refers to {url}"));
            assert!(ASSETS.iter().any(|a| a.name == file), "{file} is missing");
        }
        assert!(page.contains("graphiql.js") && page.contains("style.css"));
    }

    #[tokio::test]
    async fn the_page_has_security_headers() {
        let response = page();
        let headers = response.headers();
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("script-src 'self';"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-eval"));
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }

    #[tokio::test]
    async fn assets_are_served_with_types_and_long_caching() {
        let version = VERSION.as_str();
        for asset in ASSETS {
            let response = get(&format!("/graphiql/{version}/{}", asset.name), &[]).await;
            assert_eq!(response.status(), StatusCode::OK, "{}", asset.name);
            let headers = response.headers();
            assert_eq!(headers[header::CONTENT_TYPE], asset.content_type);
            assert_eq!(
                headers[header::CACHE_CONTROL],
                "public, max-age=31536000, immutable"
            );
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            assert_eq!(body.as_ref(), asset.bytes);
        }
    }

    #[tokio::test]
    async fn assets_are_served_compressed_as_asked() {
        let version = VERSION.as_str();
        let url = format!("/graphiql/{version}/graphiql.js");
        let raw = ASSETS
            .iter()
            .find(|a| a.name == "graphiql.js")
            .unwrap()
            .bytes;
        for (accept, encoding) in [
            ("br", Some("br")),
            ("gzip, deflate, br", Some("br")),
            ("gzip", Some("gzip")),
            ("br;q=0.5, gzip;q=0.9", Some("gzip")),
            ("br;q=0", None),
            ("identity", None),
        ] {
            let response = get(&url, &[("accept-encoding", accept)]).await;
            let headers = response.headers().clone();
            assert_eq!(
                headers
                    .get(header::CONTENT_ENCODING)
                    .map(|v| v.to_str().unwrap()),
                encoding,
                "{accept}"
            );
            assert_eq!(headers[header::VARY], "accept-encoding");
            let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
            let mut decoded = Vec::new();
            match encoding {
                Some("br") => {
                    brotli::BrotliDecompress(&mut body.as_ref(), &mut decoded).unwrap();
                }
                Some(_) => {
                    use std::io::Read;
                    flate2::read::GzDecoder::new(body.as_ref())
                        .read_to_end(&mut decoded)
                        .unwrap();
                }
                None => decoded = body.to_vec(),
            }
            assert!(decoded == raw, "{accept}: the body decodes to the asset");
        }
    }

    #[tokio::test]
    async fn other_versions_and_unknown_files_are_not_found() {
        let version = VERSION.as_str();
        for path in [
            "/graphiql/0123456789abcdef/graphiql.js".to_owned(),
            format!("/graphiql/{version}x/graphiql.js"),
            format!("/graphiql/{version}/index.html"),
            format!("/graphiql/{version}/..%2FCargo.toml"),
            format!("/graphiql/{version}/nope.js"),
        ] {
            assert_eq!(get(&path, &[]).await.status(), StatusCode::NOT_FOUND);
        }
    }

    #[tokio::test]
    async fn revalidation_answers_not_modified() {
        let version = VERSION.as_str();
        let etag = format!("\"{version}\"");
        let response = get(
            &format!("/graphiql/{version}/style.css"),
            &[("if-none-match", &etag)],
        )
        .await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    }
}
