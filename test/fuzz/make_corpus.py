#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora into test/fuzz/corpus/<target>/ (one small file
per case, named after it). Run it after changing a seed here; the files are kept in
the repository so that a checkout can fuzz without Python. scripts/fuzz copies them
into the build directory before each run and never writes here."""
import pathlib
import shutil

root = pathlib.Path(__file__).resolve().parent / "corpus"
key = "sk_car_0123456789abcdef"  # the key fuzz_response configures
token = '{"token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjbGllbnQifQ.c2ln","expires_in":60}'


def control(read_size=7, limits=0, fail_at=0):
    """fuzz_response's first byte: read size index (7: all at once), limits index,
    the read operation that fails (0: none)."""
    return bytes([read_size | limits << 3 | fail_at << 5])


def response(status_line, headers=(), body="", length=True):
    lines = [status_line] + list(headers)
    if length and body is not None:
        lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + (body or "")).encode()


def error_json(status, title, message, code=None, request_id="3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"):
    code_json = "null" if code is None else f'"{code}"'
    return (f'{{"error_code":{code_json},"title":"{title}","message":"{message}",'
            f'"request_id":"{request_id}"}}')


JSON = "Content-Type: application/json"
ok = response("HTTP/1.1 200 OK", [JSON], token)
chunked_body = "".join(f"{len(part):x}\r\n{part}\r\n" for part in (token[:17], token[17:60], token[60:])) + "0\r\n\r\n"

responses = {
    "200-json": control() + ok,
    "200-json-byte-by-byte": control(read_size=0) + ok,
    "200-json-reads-of-7": control(read_size=3) + ok,
    "200-chunked": control(read_size=4) + response("HTTP/1.1 200 OK", [JSON, "Transfer-Encoding: chunked"],
                                                  chunked_body, length=False),
    "200-chunked-extensions-trailer": control() + response(
        "HTTP/1.1 200 OK", [JSON, "Transfer-Encoding: chunked", "Trailer: x-checksum"],
        f"{len(token):X};name=value\r\n{token}\r\n0\r\nx-checksum: 1\r\n\r\n", length=False),
    "100-then-200": control() + b"HTTP/1.1 100 Continue\r\n\r\n" + ok,
    "103-100-then-200": control(read_size=5) + b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
                        b"HTTP/1.1 100 Continue\r\n\r\n" + ok,
    "101-switching": control() + b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    "200-close-until-eof": control() + response("HTTP/1.1 200 OK", [JSON, "Connection: close"], token, length=False),
    "200-http10": control() + response("HTTP/1.0 200 OK", [JSON], token, length=False),
    "200-keep-alive-then-200": control() + ok + ok,
    "200-then-429-pipelined": control(read_size=6) + ok + response(
        "HTTP/1.1 429 Too Many Requests", [JSON, "retry-after-ms: 250"],
        error_json(429, "Too Many Requests", "Too many requests; retry later")),
    "200-unknown-fields-escapes": control() + response(
        "HTTP/1.1 200 OK", ["content-type: application/json; charset=utf-8", "x-request-id: req-1"],
        '{"user_id":null,"token":"a\\/b\\u00e9\\"c\\\\d","scopes":["tts","stt"],"nested":{"k":[1,2.5e3,true]}}'),
    "200-html": control() + response("HTTP/1.1 200 OK", ["Content-Type: text/html"],
                                     "<!DOCTYPE html><html><head><title>Sign in</title></head></html>"),
    "200-token-null": control() + response("HTTP/1.1 200 OK", [JSON], '{"token":null}'),
    "200-token-number": control() + response("HTTP/1.1 200 OK", [JSON], '{"token":42}'),
    "200-json-array": control() + response("HTTP/1.1 200 OK", [JSON], '["token","x"]'),
    "200-json-truncated": control() + response("HTTP/1.1 200 OK", [JSON], '{"token":"abc'),
    "200-body-cut-short": control() + response("HTTP/1.1 200 OK", [JSON, "Content-Length: 500"], token,
                                               length=False),
    "200-headers-over-128": control(limits=1) + response(
        "HTTP/1.1 200 OK", [JSON, "x-padding: " + "p" * 150], token),
    "200-body-over-16": control(limits=2) + ok,
    "200-chunked-body-over-1": control(limits=3) + response(
        "HTTP/1.1 200 OK", ["Transfer-Encoding: chunked"], "2\r\nab\r\n0\r\n\r\n", length=False),
    "200-read-fails-first": control(fail_at=1) + ok,
    "200-byte-by-byte-read-fails-later": control(read_size=0, fail_at=7) + ok,
    "204-no-content": control() + b"HTTP/1.1 204 No Content\r\n\r\n",
    "400-json": control() + response("HTTP/1.1 400 Bad Request", [JSON],
                                     error_json(400, "Bad Request", "expires_in must be at most 3600",
                                                "invalid_request")),
    "401-echoes-key": control() + response(
        "HTTP/1.1 401 Unauthorized", [JSON, "x-request-id: " + key],
        error_json(401, "Unauthorized", f"key {key} is revoked", request_id="")),
    "401-plain-text-key": control() + response("HTTP/1.1 401 Unauthorized", ["Content-Type: text/plain"],
                                               f"Invalid API key: {key}\n\n"),
    "403-json": control() + response("HTTP/1.1 403 Forbidden", [JSON],
                                     error_json(403, "Forbidden", "this key cannot issue tokens")),
    "404-json": control() + response("HTTP/1.1 404 Not Found", [JSON, "x-request-id: abc"],
                                     error_json(404, "Not Found", "no route /v1/access-token")),
    "409-json": control() + response("HTTP/1.1 409 Conflict", [JSON], error_json(409, "Conflict", "retry")),
    "422-json": control() + response("HTTP/1.1 422 Unprocessable Entity", [JSON],
                                     error_json(422, "Unprocessable Entity", "grants must name one product")),
    "429-retry-after-ms": control() + response(
        "HTTP/1.1 429 Too Many Requests", [JSON, "retry-after-ms: 250.5", "x-should-retry: true"],
        error_json(429, "Too Many Requests", "Too many requests; retry later")),
    "429-retry-after-seconds": control() + response(
        "HTTP/1.1 429 Too Many Requests", [JSON, "Retry-After: 3"],
        error_json(429, "Too Many Requests", "slow down")),
    "503-retry-after-date": control() + response(
        "HTTP/1.1 503 Service Unavailable", [JSON, "Retry-After: Sat, 28 Nov 2026 12:00:07 GMT",
                                             "x-should-retry: false"],
        error_json(503, "Service Unavailable", "maintenance")),
    "503-retry-after-past-date": control() + response(
        "HTTP/1.1 503 Service Unavailable", ["Retry-After: Sun, 06 Nov 1994 08:49:37 GMT"], "down"),
    "500-plain": control() + response("HTTP/1.1 500 Internal Server Error", ["Content-Type: text/plain",
                                                                              "x-request-id: r-500"],
                                      "Internal Server Error\r\n"),
    "502-html-close": control() + response("HTTP/1.1 502 Bad Gateway", ["Content-Type: text/html",
                                                                         "Connection: close"],
                                           "<html><body>502 Bad Gateway</body></html>"),
    "302-redirect": control() + response("HTTP/1.1 302 Found", ["Location: https://example.com/"], ""),
    "obs-fold-header": control() + b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-a: b\r\n c\r\n"
                       b"Content-Length: 12\r\n\r\n{\"token\":1}\n",
    "duplicate-content-length": control() + b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "length-and-chunked": control() + b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"0\r\n\r\n",
    "status-line-only": control() + b"HTTP/1.1 200 OK\r\n",
    "close-mid-headers": control() + b"HTTP/1.1 200 OK\r\nContent-Type: appl",
    "garbage": control() + b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
    "closed-before-responding": control(),
}

error_bodies = {
    # key spec, content type, x-request-id, body; FuzzedDataProvider strings end at "\" + one byte.
    "json-2026-03-01": ("", "application/json", "req-1",
                        error_json(401, "Unauthorized", "Invalid API key", "invalid_api_key")),
    "json-code-null": ("", "application/json", "",
                       error_json(429, "Too Many Requests", "Too many requests; retry later")),
    "json-echoes-key": ("", "application/json", "", error_json(401, "Unauthorized", f"key {key} is revoked")),
    "json-key-in-every-field": ("", "application/json", key,
                                f'{{"title":"{key}","message":"{key}{key}","error_code":"x{key}",'
                                f'"request_id":"{key}"}}'),
    "plain-text-key": ("", "text/plain", "", f"Invalid API key: {key}\n"),
    "key-straddles-1024": ("", "text/plain", "", "x" * 1010 + key),
    "other-key-echoed": ("ABCdef123", "application/json", "", '{"message":"key sk_car_ABCdef123 is revoked"}'),
    "token-200": ("", "application/json", "", token),
    "token-escapes": ("", "application/json; charset=utf-8", "", '{"token":"a\\/b\\u00e9\\"c\\\\d","x":[1,{}]}'),
    "token-null": ("", "application/json", "", '{"token":null}'),
    "token-empty": ("", "application/json", "", '{"token":""}'),
    "html": ("", "text/html; " + key, "", "<!DOCTYPE html><html><body>Sign in</body></html>"),
    "json-array": ("", "application/json", "", '["token","x"]'),
    "json-deep": ("", "application/json", "", "[" * 40 + "]" * 40),
    "json-numbers": ("", "application/json", "", '{"token":"t","n":[-0,1e308,1e-400,123456789012345678901234]}'),
    "json-comments-bom": ("", "application/json", "", '\ufeff{"token": /* no */ "t"}'),
    "empty-body": ("", "", "", ""),
    "placeholder-key": ("!", "text/plain", "", "Invalid API key: sk_car_..."),
    "printable-key": ("!Bearer-xyz123", "application/json", "", '{"message":"Bearer-xyz123 rejected"}'),
}

retry_afters = {
    # retry-after-ms, Retry-After
    "ms-integer": ("250", ""),
    "ms-fraction": ("12.7", "9"),
    "ms-spaces": (" 1500 ", ""),
    "ms-garbage-falls-back": ("soon", "3"),
    "seconds": ("", "3"),
    "seconds-fraction": ("", " 1.5 "),
    "seconds-large": ("", "86400"),
    "seconds-negative": ("", "-3"),
    "date-future": ("", "Sat, 28 Nov 2026 12:00:07 GMT"),
    "date-past": ("", "Sun, 06 Nov 1994 08:49:37 GMT"),
    "date-leap-second": ("", "Wed, 31 Dec 2025 23:59:60 GMT"),
    "date-year-9999": ("", "Fri, 31 Dec 9999 23:59:59 GMT"),
    "date-year-0000": ("", "Sat, 01 Jan 0000 00:00:00 GMT"),
    "date-bad-month": ("", "Sat, 28 Foo 2026 12:00:07 GMT"),
    "date-feb-31": ("", "Sat, 31 Feb 2026 12:00:07 GMT"),
    "date-rfc850": ("", "Sunday, 06-Nov-94 08:49:37 GMT"),
    "date-asctime": ("", "Sun Nov  6 08:49:37 1994"),
    "both-absent": ("", ""),
    "ms-huge": ("999999999999", "1"),
}

urls = {
    # api_version, base_url
    "default": "https://api.cartesia.ai",
    "trailing-slash": "https://api.cartesia.ai/",
    "prefix": "https://proxy.example.com/v1/cartesia/",
    "port": "https://localhost:8443",
    "port-zero": "https://localhost:0",
    "port-too-large": "https://localhost:65536",
    "port-leading-zeros": "https://localhost:000443",
    "port-wraps": "https://127.0.0.1:100443",
    "port-runs-into-path": "https://localhost:8s443",
    "ipv4-prefix-of-name": "https://10.0.0.1.nip.io/v1",
    "ipv4": "https://127.0.0.1:8443/",
    "ipv6": "https://[::1]:8443/prefix",
    "ipv6-zone": "https://[fe80::1%25eth0]/",
    "ipvfuture": "https://[v1.fe]/",
    "http": "http://api.cartesia.ai",
    "userinfo": "https://user:pass@api.cartesia.ai",
    "query": "https://api.cartesia.ai/?a=b",
    "fragment": "https://api.cartesia.ai/#x",
    "percent-host": "https://api%2ecartesia.ai/",
    "percent-path": "https://api.cartesia.ai/a%20b/%0d%0a",
    "underscore-host": "https://my_host.example/",
    "empty-host": "https:///path",
    "relative": "/access-token",
    "uppercase-scheme": "HTTPS://API.CARTESIA.AI",
    "dot-segments": "https://api.cartesia.ai/a/../b/./c",
    "empty": "",
}

corpora = {
    "fuzz_response": {name: data for name, data in responses.items()},
    "fuzz_error_body": {name: "\\ ".join(parts[:3]).encode() + b"\\ " + parts[3].encode()
                        for name, parts in error_bodies.items()},
    "fuzz_retry_after": {name: (ms + "\\ " + ra).encode() for name, (ms, ra) in retry_afters.items()},
    "fuzz_base_url": {name: ("2026-03-01\\ " + url).encode() for name, url in urls.items()},
}
# proxy, no_proxy, a host to match, then resolve entries one per line
network_configs = {
    "direct": ("", "", "api.cartesia.ai", ""),
    "proxy": ("http://proxy.corp:3128", "", "api.cartesia.ai", ""),
    "proxy-auth": ("http://user:p%40ss:w0rd@proxy.corp:3128/", "localhost,127.0.0.1", "localhost", ""),
    "proxy-no-scheme": ("user@[::1]:3128", ".cartesia.ai", "API.cartesia.ai", ""),
    "proxy-https": ("https://proxy.corp", "*", "example.com", ""),
    "proxy-bypassed": ("http://proxy.corp", "example.com, .cartesia.ai:443", "www.example.com", ""),
    "no-proxy-cidr": ("", "10.0.0.0/8, fd00::/8, [::1]:8080", "fd12::1", ""),
    "resolve": ("", "", "api.cartesia.ai",
                "api.cartesia.ai:443:127.0.0.1,[::1]\n[::1]:9000:::1\n*:443:192.0.2.1"),
    "resolve-bad": ("", "", "h", "h:443:not-an-address"),
}
corpora["fuzz_network_config"] = {
    name: "\\ ".join(parts[:3]).encode() + b"\\ " + parts[3].encode()
    for name, parts in network_configs.items()}
corpora["fuzz_base_url"]["bad-api-version"] = b"2026-13-01\\ https://api.cartesia.ai"
corpora["fuzz_base_url"]["api-version-injection"] = b"2026-03-01\r\nX: y\\ https://api.cartesia.ai"

# fuzz_token_expiry: a control byte (bit 0: wrap the rest as a JWT payload, bit 1: pad
# it, bit 2: sent an hour before the clock's end), expires_in as two bytes, the rest.
token_expiry_seeds = {
    "jwt-payload": (1, 60, '{"grants":{"tts":true},"jti":"x","iat":1800000000,"iss":"https://api.cartesia.ai",'
                           '"exp":1800000300}'),
    "jwt-payload-padded": (3, 0, '{"exp":1800000300.5}'),
    "jwt-duplicate-exp": (1, 300, '{"exp":1,"exp":2}'),
    "jwt-exp-string": (1, 300, '{"exp":"1800000300"}'),
    "jwt-exp-escaped-key": (1, 300, '{"e\\u0078p":42}'),
    "jwt-exp-too-large": (1, 300, '{"exp":253402300800}'),
    "jwt-not-object": (1, 300, '[1800000300]'),
    "opaque": (0, 3600, "tok_0123456789abcdef"),
    "opaque-at-clock-end": (4, 3600, "tok_0123456789abcdef"),
    "raw-jwt": (0, 0, "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE4MDAwMDAzMDB9.c2ln"),
    "raw-jwt-bad-char": (0, 60, "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE4MDA+MDAzMDB9.c2ln"),
}
corpora["fuzz_token_expiry"] = {
    name: bytes([control]) + lifetime.to_bytes(2, "big") + text.encode()
    for name, (control, lifetime, text) in token_expiry_seeds.items()}

for target, seeds in corpora.items():
    directory = root / target
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    for name, data in seeds.items():
        (directory / name).write_bytes(data)
    print(f"{target}: {len(seeds)} seeds")
