//! Conversions between `http` types and the plain parts of the WIT `request`/`response`
//! records, shared by `wsbox.wasm` (`component/`) and the guest SDK, whose generated record
//! types differ but carry the same fields.

/// Header names and raw values, in order, as the WIT records carry them.
pub type Headers = Vec<(String, Vec<u8>)>;

/// Builds an `http::Request` from a WIT request's fields. Everything here came from a host,
/// so each part is checked; `Err` says which part is not valid HTTP, for a 400's body.
pub fn to_request(
    method: &str,
    uri: &str,
    version: u8,
    headers: Headers,
    body: Vec<u8>,
) -> Result<http::Request<Vec<u8>>, String> {
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("invalid method {method:?}"))?;
    let uri = uri
        .parse::<http::Uri>()
        .map_err(|e| format!("invalid request target {uri:?}: {e}"))?;
    // The WIT record defines 10 and 11 only: the hosts of both worlds speak HTTP/1.x.
    let version = match version {
        10 => http::Version::HTTP_10,
        11 => http::Version::HTTP_11,
        other => return Err(format!("unknown HTTP version {other}")),
    };
    let mut request = http::Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    for (name, value) in headers {
        let header = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        let value = http::HeaderValue::from_bytes(&value)
            .map_err(|_| format!("invalid value for header {name:?}"))?;
        request.headers_mut().append(header, value);
    }
    Ok(request)
}

/// A response's status, headers and body, for a WIT `response` record.
pub fn from_response(response: http::Response<Vec<u8>>) -> (u16, Headers, Vec<u8>) {
    let (parts, body) = response.into_parts();
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    (parts.status.as_u16(), headers, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_invalid_part_is_named() {
        let ok = || to_request("GET", "/", 11, vec![("host".into(), b"x".to_vec())], vec![]);
        assert_eq!(ok().unwrap().headers()["host"], "x");
        assert!(
            to_request("G E T", "/", 11, vec![], vec![])
                .unwrap_err()
                .contains("method")
        );
        assert!(
            to_request("GET", "/ x", 11, vec![], vec![])
                .unwrap_err()
                .contains("target")
        );
        assert!(
            to_request("GET", "/", 12, vec![], vec![])
                .unwrap_err()
                .contains("version")
        );
        let bad_name = vec![("bad name".into(), b"x".to_vec())];
        assert!(
            to_request("GET", "/", 11, bad_name, vec![])
                .unwrap_err()
                .contains("header name")
        );
        let bad_value = vec![("host".into(), b"a\nb".to_vec())];
        assert!(
            to_request("GET", "/", 11, bad_value, vec![])
                .unwrap_err()
                .contains("value")
        );
    }

    #[test]
    fn response_parts_keep_order_and_repeats() {
        let response = http::Response::builder()
            .status(404)
            .header("x-a", "1")
            .header("x-a", "2")
            .body(b"gone".to_vec())
            .unwrap();
        let (status, headers, body) = from_response(response);
        assert_eq!((status, body.as_slice()), (404, &b"gone"[..]));
        assert_eq!(
            headers,
            [
                ("x-a".to_owned(), b"1".to_vec()),
                ("x-a".to_owned(), b"2".to_vec())
            ]
        );
    }
}
