#!/usr/bin/env python3
"""Interoperability: JOSE and OAuth 2.0 client libraries we did not write, used unchanged
against a running Latchkey through its public HTTP API only.

  1. PyJWT verifies an access token offline: keys from the JWKS named in the RFC 8414 metadata,
     RFC 9068 header and claims, and a tampered signature is refused.
  2. Authlib fetches a token by client credentials with client_secret_basic and calls /v1/me.
  3. Authlib does the same with client_secret_post and a narrowed scope.

Plain script (no pytest). Needs LATCHKEY_URL and LATCHKEY_ADMIN_KEY (tests/interop/run.sh sets
both). Prints `ok  NAME` or `FAIL NAME: REASON` per check, then `N passed, N failed`, and exits
non-zero when any check failed.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

import jwt
import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

TIMEOUT = 15
METADATA_PATH = "/.well-known/oauth-authorization-server"
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "jti", "client_id", "scope"]


class CheckFailed(Exception):
    pass


def check(cond: bool, message: str) -> None:
    if not cond:
        raise CheckFailed(message)


def describe(resp: requests.Response) -> str:
    """One line saying exactly what was asked and what came back, for a failure message."""
    body = resp.text
    if len(body) > 600:
        body = body[:600] + "…"
    ctype = resp.headers.get("Content-Type", "-")
    return (
        f"{resp.request.method} {resp.request.url} -> {resp.status_code} "
        f"(Content-Type: {ctype}) {body!r}"
    )


def expect_json(resp: requests.Response, status: int) -> dict:
    check(resp.status_code == status, f"expected {status}: {describe(resp)}")
    try:
        data = resp.json()
    except ValueError:
        raise CheckFailed(f"response is not JSON: {describe(resp)}") from None
    check(isinstance(data, dict), f"expected a JSON object: {describe(resp)}")
    return data


class Latchkey:
    def __init__(self, url: str, admin_key: str) -> None:
        self.url = url.rstrip("/")
        self.admin_key = admin_key
        self.http = requests.Session()
        self._metadata: dict | None = None

    def create_key(self, name: str) -> dict:
        """A test-environment secret key owned by the admin: `id` is the OAuth client_id,
        `key` the client_secret."""
        resp = self.http.post(
            f"{self.url}/v1/keys",
            headers={"Authorization": f"Bearer {self.admin_key}"},
            json={"name": name, "environment": "test"},
            timeout=TIMEOUT,
        )
        created = expect_json(resp, 201)
        for field in ("id", "key"):
            check(isinstance(created.get(field), str) and created[field],
                  f"POST /v1/keys: no `{field}` in {created!r}")
        return created

    def metadata(self) -> dict:
        """RFC 8414 authorization server metadata, checked as a client would before trusting it."""
        if self._metadata is not None:
            return self._metadata
        resp = self.http.get(f"{self.url}{METADATA_PATH}", timeout=TIMEOUT)
        meta = expect_json(resp, 200)
        for field in ("issuer", "jwks_uri", "token_endpoint", "introspection_endpoint",
                      "revocation_endpoint"):
            value = meta.get(field)
            check(isinstance(value, str) and value.startswith(("http://", "https://")),
                  f"metadata `{field}` is not an absolute URL: {value!r} in {meta!r}")
        # RFC 8414 §3.3: the issuer MUST be identical to the identifier the well-known URL was
        # built from (any terminating "/" is removed before inserting the well-known segment).
        check(meta["issuer"].rstrip("/") == self.url,
              f"metadata issuer {meta['issuer']!r} does not match the server it was fetched from "
              f"({self.url}{METADATA_PATH}); RFC 8414 §3.3 clients must reject it")
        self._metadata = meta
        return meta

    def me(self, access_token: str) -> dict:
        resp = self.http.get(
            f"{self.url}/v1/me",
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=TIMEOUT,
        )
        return expect_json(resp, 200)


def flip_signature_char(token: str) -> str:
    """The same token with one character of the signature changed. Not the last character: in
    an 86-character base64url Ed25519 signature its low bits are padding, which decoders drop."""
    header, payload, signature = token.split(".")
    check(len(signature) > 2, f"token has no signature part: {token!r}")
    i = len(signature) // 2
    replacement = "A" if signature[i] != "A" else "B"
    return ".".join([header, payload, signature[:i] + replacement + signature[i + 1:]])


# --- 1 ---------------------------------------------------------------------------------------

def pyjwt_offline_verification(lk: Latchkey) -> None:
    created = lk.create_key("interop")

    resp = lk.http.post(
        f"{lk.url}/v1/auth/token",
        headers={"Authorization": f"Bearer {created['key']}"},
        json={"ttl_seconds": 300},
        timeout=TIMEOUT,
    )
    issued = expect_json(resp, 200)
    for field in ("access_token", "token_type", "expires_in", "scope"):
        check(field in issued, f"POST /v1/auth/token: no `{field}` in {issued!r}")
    check(issued["token_type"] == "Bearer",
          f"token_type is {issued['token_type']!r}, want 'Bearer'")
    check(isinstance(issued["expires_in"], int) and 0 < issued["expires_in"] <= 300,
          f"expires_in is {issued['expires_in']!r} after asking for ttl_seconds=300")
    token = issued["access_token"]

    meta = lk.metadata()
    issuer = meta["issuer"]

    header = jwt.get_unverified_header(token)
    check(header.get("typ") == "at+jwt", f"header typ is {header.get('typ')!r}, want 'at+jwt'")
    check(header.get("alg") == "EdDSA", f"header alg is {header.get('alg')!r}, want 'EdDSA'")
    check(isinstance(header.get("kid"), str) and header["kid"], f"no kid in header {header!r}")

    # What a resource server does: keys from the advertised JWKS, chosen by kid.
    jwks_client = jwt.PyJWKClient(meta["jwks_uri"], cache_keys=False, timeout=TIMEOUT)
    try:
        signing_key = jwks_client.get_signing_key_from_jwt(token)
    except jwt.PyJWKClientError as e:
        raw = requests.get(meta["jwks_uri"], timeout=TIMEOUT)
        raise CheckFailed(f"PyJWKClient: {type(e).__name__}: {e}; JWKS was {describe(raw)}") from None

    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=["EdDSA"],
        audience=issuer,
        issuer=issuer,
        options={"require": ["exp", "iat", "iss", "sub", "aud", "jti"]},
    )
    missing = [c for c in REQUIRED_CLAIMS if c not in claims]
    check(not missing, f"claims {missing} missing from {claims!r}")
    check(claims["client_id"] == created["id"],
          f"client_id claim {claims['client_id']!r} != key id {created['id']!r}")
    check(claims["scope"] == issued["scope"],
          f"scope claim {claims['scope']!r} != response scope {issued['scope']!r}")
    now = int(time.time())
    check(claims["iat"] <= now + 60 and claims["exp"] > now,
          f"iat/exp {claims['iat']}/{claims['exp']} do not bracket now ({now})")
    check(claims["exp"] - claims["iat"] <= 300,
          f"exp - iat = {claims['exp'] - claims['iat']} s after asking for 300 s")

    tampered = flip_signature_char(token)
    try:
        jwt.decode(tampered, signing_key.key, algorithms=["EdDSA"], audience=issuer,
                   issuer=issuer)
    except jwt.InvalidSignatureError:
        pass
    else:
        raise CheckFailed("a token with a changed signature verified")


# --- 2 and 3 ---------------------------------------------------------------------------------

def fetch_with_authlib(lk: Latchkey, name: str, method: str, **token_kwargs) -> tuple[dict, OAuth2Session]:
    created = lk.create_key(name)
    token_endpoint = lk.metadata()["token_endpoint"]

    session = OAuth2Session(
        client_id=created["id"],
        client_secret=created["key"],
        token_endpoint_auth_method=method,
    )
    # Keep the raw token response: Authlib turns some non-2xx bodies into a "token" silently.
    seen: list[requests.Response] = []
    session.hooks["response"].append(lambda r, *a, **k: seen.append(r))
    try:
        token = session.fetch_token(token_endpoint, grant_type="client_credentials",
                                    timeout=TIMEOUT, **token_kwargs)
    except (AuthlibBaseError, requests.RequestException, ValueError) as e:
        detail = describe(seen[-1]) if seen else "no response"
        raise CheckFailed(f"Authlib fetch_token ({method}): {type(e).__name__}: {e}; {detail}") from None
    check(seen and seen[-1].status_code == 200,
          f"token endpoint: {describe(seen[-1]) if seen else 'no response'}")
    check(str(token.get("token_type", "")).lower() == "bearer",
          f"token_type is {token.get('token_type')!r}: {dict(token)!r}")
    check(token.get("access_token"), f"no access_token in {dict(token)!r}")
    check("refresh_token" not in token,
          "a refresh_token was issued for client credentials (RFC 6749 §4.4.3)")

    me = lk.me(token["access_token"])
    credential = me.get("credential") or {}
    check(credential.get("type") == "access_token",
          f"/v1/me credential.type is {credential.get('type')!r}: {me!r}")

    # And through Authlib's own bearer handling of the token it holds.
    resp = session.get(f"{lk.url}/v1/me", timeout=TIMEOUT)
    check(resp.status_code == 200, f"/v1/me through the OAuth2Session: {describe(resp)}")
    return dict(token), session


def authlib_client_secret_basic(lk: Latchkey) -> None:
    fetch_with_authlib(lk, "interop basic", "client_secret_basic")


def authlib_client_secret_post(lk: Latchkey) -> None:
    token, _ = fetch_with_authlib(lk, "interop post", "client_secret_post",
                                  scope="documents:read")
    check(token.get("scope") == "documents:read",
          f"scope is {token.get('scope')!r} after asking for 'documents:read'")


CHECKS = [
    ("pyjwt_offline_verification", pyjwt_offline_verification),
    ("authlib_client_secret_basic", authlib_client_secret_basic),
    ("authlib_client_secret_post", authlib_client_secret_post),
]


def one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def main() -> int:
    url = os.environ.get("LATCHKEY_URL")
    admin_key = os.environ.get("LATCHKEY_ADMIN_KEY")
    lk = Latchkey(url or "", admin_key or "")
    passed = failed = 0
    for name, fn in CHECKS:
        try:
            if not url or not admin_key:
                raise CheckFailed("LATCHKEY_URL and LATCHKEY_ADMIN_KEY must be set")
            fn(lk)
        except CheckFailed as e:
            failed += 1
            print(f"FAIL {name}: {one_line(e)}", flush=True)
        except Exception as e:  # a library raised: that is the finding, with where it came from
            failed += 1
            where = traceback.extract_tb(e.__traceback__)[-1]
            print(f"FAIL {name}: {type(e).__name__}: {one_line(e)} "
                  f"(at {os.path.basename(where.filename)}:{where.lineno})", flush=True)
        else:
            passed += 1
            print(f"ok  {name}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
