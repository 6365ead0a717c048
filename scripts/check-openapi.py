#!/usr/bin/env python3
"""Checks docs/api/openapi.yaml against a live exporter.

usage: check-openapi.py OPENAPI.yaml BASE_URL

1. The file is valid OpenAPI 3.1 (openapi-spec-validator).
2. Every documented operation, called with its example body, answers a documented status, and a
   JSON answer validates against the documented schema (jsonschema, draft 2020-12).
3. Every method the file does not list for a path answers 405 with an Allow header that lists
   exactly the documented methods (so the file names every method the server accepts).
"""
import json
import sys
import urllib.error
import urllib.request

import jsonschema
import yaml
from openapi_spec_validator import validate

METHODS = ["get", "put", "patch", "post", "delete"]


def call(method, url, body=None, content_type=None):
    data = None if body is None else body.encode()
    req = urllib.request.Request(url, data=data, method=method.upper())
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def main():
    spec_path, base = sys.argv[1], sys.argv[2].rstrip("/")
    spec = yaml.safe_load(open(spec_path))
    validate(spec)
    print(f"ok   {spec_path} is valid OpenAPI {spec['openapi']}")
    failures = checks = 0

    def schema_for(s):
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", **s, "components": spec["components"]}

    for path, item in spec["paths"].items():
        concrete = [path.replace("{node}", "0").replace("{file}", f) for f in
                    ((item.get("parameters") or [{}])[-1].get("schema", {}).get("enum") or ["-"])] if "{file}" in path \
            else [path.replace("{node}", "0")]
        documented = [m for m in METHODS if m in item]
        for url_path in concrete:
            url = base + url_path
            for method in documented:
                op = item[method]
                body = ctype = None
                rb = op.get("requestBody")
                if rb:
                    ctype, media = next(iter(rb["content"].items()))
                    example = media.get("example")
                    body = example if isinstance(example, str) else json.dumps(example)
                if url_path.endswith(("/stat", "/full_scans")) and method == "put":
                    continue  # documented as 405 for read-only files, checked below
                status, headers, text = call(method, url, body, ctype)
                checks += 1
                if str(status) not in op["responses"]:
                    failures += 1
                    print(f"FAIL {method.upper()} {url_path}: status {status} not documented: {text[:200]}")
                    continue
                content = op["responses"][str(status)].get("content", {})
                if "application/json" in content and status < 300:
                    schema = content["application/json"]["schema"]
                    try:
                        jsonschema.validate(json.loads(text), schema_for(schema))
                    except Exception as e:  # noqa: BLE001 - any mismatch is a finding
                        failures += 1
                        print(f"FAIL {method.upper()} {url_path}: body does not match the schema: {e}")
                        continue
                print(f"ok   {method.upper()} {url_path} -> {status}")
            allowed = {m.upper() for m in documented} | ({"HEAD"} if "get" in documented else set())
            if url_path.endswith(("/stat", "/full_scans")):
                allowed = {"GET", "HEAD"}
            for method in METHODS:
                if method.upper() in allowed:
                    continue
                # The text view gets no body (a wrong content type there is 415 before 405).
                text_view = url_path.startswith("/mcescan/")
                body = None if method == "get" or text_view else "{}"
                status, headers, _ = call(method, url, body, None if text_view else "application/json")
                got = {m.strip() for m in headers.get("Allow", "").split(",") if m.strip()}
                checks += 1
                if status != 405 or got != allowed:
                    failures += 1
                    print(f"FAIL {method.upper()} {url_path}: want 405 with Allow {sorted(allowed)}, got {status} {sorted(got)}")
                else:
                    print(f"ok   {method.upper()} {url_path} -> 405 Allow {', '.join(sorted(got))}")
    print(f"{checks - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
