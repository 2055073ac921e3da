"""Validates Tessera's discovery documents with authlib's strict metadata classes
(RFC 8414 and OpenID Connect Discovery 1.0), a validator nobody here wrote.
Usage: python discovery_authlib.py <issuer>; exits non-zero with the reason."""

import json
import sys
import urllib.request

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata

issuer = sys.argv[1].rstrip("/")
for path, cls in [
    ("/.well-known/oauth-authorization-server", AuthorizationServerMetadata),
    ("/.well-known/openid-configuration", OpenIDProviderMetadata),
]:
    with urllib.request.urlopen(issuer + path, timeout=30) as response:
        document = json.load(response)
    metadata = cls(document)
    metadata.validate()
    if "consent" not in document.get("prompt_values_supported", []):
        sys.exit(f"{path}: prompt_values_supported omits consent")
    print(f"ok {path}")
