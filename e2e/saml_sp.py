"""Two SAML service-provider libraries nobody here wrote, driven by e2e/saml.mjs:
pysaml2 (with Debian's xmlsec1) and python3-saml (OneLogin, with the xmlsec
bindings). Each call reads one JSON object on stdin and prints one on stdout.

  request   {lib, binding, sp, idpMetadata, ...} -> {url} (redirect) or
            {action, fields} (POST): an AuthnRequest made and, when the SP has a
            key, signed by the library
  validate  {lib, sp, idpMetadata, response, requestId?, relayState?} ->
            {nameId, nameIdFormat, attributes, sessionIndex, authnContext}:
            the library's own checks (signature, audience, recipient, times,
            InResponseTo) on a Response Tessera posted

  logout    {lib, binding, sp, idpMetadata, nameId, sessionIndex, ...} -> {url}
            or {action, fields}: an SP-initiated LogoutRequest, signed when the
            SP has a key
  slo       {lib, sp, idpMetadata, url | form, requestId?} -> {url}: the SP's
            logout service receiving Tessera's message at `url` (redirect) or
            as `form` (POST): a LogoutResponse is checked (requestId is the
            LogoutRequest it answers), a LogoutRequest is checked and answered
            with the URL of the library's LogoutResponse

`sp` is {entityId, acs, slo?, key?, cert?, wantSigned?, encryptionKey?, ...};
keys and certificates are PEM.
"""

import base64
import json
import os
import sys
import tempfile


def write(directory, name, text):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


# ---------------------------------------------------------------------------
# pysaml2


def pysaml2_client(job, directory):
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.client import Saml2Client
    from saml2.config import SPConfig

    sp = job["sp"]
    metadata = write(directory, "idp.xml", job["idpMetadata"])
    config = {
        "entityid": sp["entityId"],
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "allow_unknown_attributes": True,
        "metadata": {"local": [metadata]},
        "service": {
            "sp": {
                "endpoints": {
                    "assertion_consumer_service": [(sp["acs"], BINDING_HTTP_POST)],
                    "single_logout_service": [
                        (sp["slo"], BINDING_HTTP_REDIRECT),
                        (sp["slo"], BINDING_HTTP_POST),
                    ]
                    if sp.get("slo")
                    else [],
                },
                "allow_unsolicited": job.get("unsolicited", False),
                "authn_requests_signed": bool(sp.get("key")),
                "want_assertions_signed": sp.get("wantAssertionsSigned", True),
                "want_response_signed": sp.get("wantResponseSigned", False),
                "name_id_format": sp.get(
                    "nameIdFormat", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
                ),
                "requested_authn_context": None,
            }
        },
        "signing_algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "digest_algorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
    }
    if sp.get("key"):
        config["key_file"] = write(directory, "sp.key", sp["key"])
        config["cert_file"] = write(directory, "sp.crt", sp["cert"])
    if sp.get("encryptionKey"):
        config["encryption_keypairs"] = [
            {
                "key_file": write(directory, "enc.key", sp["encryptionKey"]),
                "cert_file": write(directory, "enc.crt", sp["encryptionCert"]),
            }
        ]
    conf = SPConfig()
    conf.load(config)
    return Saml2Client(config=conf), BINDING_HTTP_POST, BINDING_HTTP_REDIRECT


def pysaml2_request(job, directory):
    client, post, redirect = pysaml2_client(job, directory)
    binding = redirect if job["binding"] == "redirect" else post
    kwargs = {}
    if job.get("forceAuthn"):
        kwargs["force_authn"] = "true"
    if job.get("authnContext"):
        from saml2.saml import AuthnContextClassRef
        from saml2.samlp import RequestedAuthnContext

        kwargs["requested_authn_context"] = RequestedAuthnContext(
            authn_context_class_ref=[AuthnContextClassRef(text=job["authnContext"])],
            comparison="exact",
        )
    sign = bool(job["sp"].get("key"))
    if sign:
        kwargs["digest_alg"] = "http://www.w3.org/2001/04/xmlenc#sha256"
    request_id, info = client.prepare_for_authenticate(
        entityid=None,
        relay_state=job.get("relayState", ""),
        binding=binding,
        sign=sign if binding == post else None,
        sigalg="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" if sign else None,
        **kwargs,
    )
    if binding == redirect:
        location = dict(info["headers"])["Location"]
        return {"requestId": request_id, "url": location}
    # The POST form pysaml2 renders: take its action and fields.
    import re

    html = info["data"]
    action = re.search(r'action="([^"]+)"', html).group(1)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', html))
    return {"requestId": request_id, "action": action, "fields": fields}


def pysaml2_validate(job, directory):
    client, post, _ = pysaml2_client(job, directory)
    outstanding = {job["requestId"]: "/"} if job.get("requestId") else {}
    response = client.parse_authn_request_response(job["response"], post, outstanding)
    if response is None:
        raise SystemExit("pysaml2 refused the response")
    identity = response.get_identity()
    subject = response.get_subject()
    authn = response.authn_info()
    statements = response.assertion.authn_statement
    return {
        "nameId": subject.text,
        "nameIdFormat": subject.format,
        "nameQualifier": subject.name_qualifier,
        "spNameQualifier": subject.sp_name_qualifier,
        "attributes": identity,
        "sessionIndex": statements[0].session_index if statements else None,
        "authnContext": authn[0][0] if authn else None,
    }


def pysaml2_name_id(job):
    from saml2.saml import NameID

    return NameID(
        text=job["nameId"],
        format=job.get("nameIdFormat"),
        name_qualifier=job.get("nameQualifier"),
        sp_name_qualifier=job.get("spNameQualifier"),
    )


def pysaml2_logout(job, directory):
    client, post, redirect = pysaml2_client(job, directory)
    binding = redirect if job["binding"] == "redirect" else post
    destination = client.metadata.single_logout_service(
        client.metadata.identity_providers()[0], binding, "idpsso"
    )[0]["location"]
    sign = bool(job["sp"].get("key"))
    request_id, request = client.create_logout_request(
        destination,
        client.metadata.identity_providers()[0],
        name_id=pysaml2_name_id(job),
        session_indexes=[job["sessionIndex"]],
        expire=None,
        sign=sign and binding == post,
        sign_alg="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        digest_alg="http://www.w3.org/2001/04/xmlenc#sha256",
    )
    info = client.apply_binding(
        binding,
        str(request),
        destination,
        relay_state=job.get("relayState", ""),
        sign=sign if binding == redirect else False,
        sigalg="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    )
    if binding == redirect:
        return {"requestId": request_id, "url": dict(info["headers"])["Location"]}
    import re

    html = info["data"]
    action = re.search(r'action="([^"]+)"', html).group(1)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', html))
    return {"requestId": request_id, "action": action, "fields": fields}


def received(job):
    """The message at the SP's logout service: its parameters, and the raw query."""
    from urllib.parse import parse_qs, urlparse

    if job.get("form"):
        return dict(job["form"]), None
    query = urlparse(job["url"]).query
    return {name: values[0] for name, values in parse_qs(query).items()}, query


def pysaml2_slo(job, directory):
    from saml2.samlp import STATUS_SUCCESS

    client, post, redirect = pysaml2_client(job, directory)
    params, _ = received(job)
    binding = post if job.get("form") else redirect
    if "SAMLResponse" in params:
        response = client.parse_logout_request_response(params["SAMLResponse"], binding)
        if response is None:
            raise SystemExit("pysaml2 refused the logout response")
        if response.response.in_response_to != job["requestId"]:
            raise SystemExit("pysaml2: the logout response answers another request")
        if response.response.status.status_code.value != STATUS_SUCCESS:
            raise SystemExit("pysaml2: logout not successful")
        return {"status": response.response.status.status_code.value}
    request = client.parse_logout_request(
        params["SAMLRequest"],
        binding,
        relay_state=params.get("RelayState"),
        sigalg=params.get("SigAlg"),
        signature=params.get("Signature"),
    )
    if request is None:
        raise SystemExit("pysaml2 refused the logout request")
    message = request.message
    if message.name_id.text != job["nameId"]:
        raise SystemExit("pysaml2: the logout request names another user")
    response = client.create_logout_response(message, [redirect], sign=False)
    info = client.apply_binding(
        redirect,
        str(response),
        client.metadata.single_logout_service(message.issuer.text, redirect, "idpsso")[0][
            "location"
        ],
        relay_state=params.get("RelayState", ""),
        response=True,
        sign=True,
        sigalg="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    )
    return {
        "url": dict(info["headers"])["Location"],
        "sessionIndexes": [s.text for s in message.session_index],
    }


# ---------------------------------------------------------------------------
# python3-saml (OneLogin)


def onelogin_settings(job):
    from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser

    sp = job["sp"]
    idp = OneLogin_Saml2_IdPMetadataParser.parse(job["idpMetadata"])
    settings = {
        "strict": True,
        "debug": False,
        "sp": {
            "entityId": sp["entityId"],
            "assertionConsumerService": {
                "url": sp["acs"],
                "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
            },
            "NameIDFormat": sp.get(
                "nameIdFormat", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
            ),
            "x509cert": sp.get("cert", ""),
            "privateKey": sp.get("key", "") or sp.get("encryptionKey", ""),
            "singleLogoutService": {
                "url": sp.get("slo", ""),
                "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
            },
        },
        "security": {
            "authnRequestsSigned": bool(sp.get("key")),
            "wantAssertionsSigned": sp.get("wantAssertionsSigned", True),
            "wantMessagesSigned": sp.get("wantResponseSigned", False),
            "wantAssertionsEncrypted": bool(sp.get("encryptionKey")),
            "signatureAlgorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "digestAlgorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
            "requestedAuthnContext": [job["authnContext"]] if job.get("authnContext") else False,
            "logoutRequestSigned": bool(sp.get("key")),
            "logoutResponseSigned": bool(sp.get("key")),
            "rejectDeprecatedAlgorithm": True,
        },
    }
    if sp.get("encryptionKey") and not sp.get("key"):
        settings["sp"]["x509cert"] = sp["encryptionCert"]
    merged = OneLogin_Saml2_IdPMetadataParser.merge_settings(settings, idp)
    # The IdP's metadata says whether it wants requests signed; this SP signs
    # whenever it has a key.
    merged["security"]["authnRequestsSigned"] = bool(sp.get("key"))
    return merged


def onelogin_request_data(job, post, at=None, get=None):
    from urllib.parse import urlparse

    acs = urlparse(at or job["sp"]["acs"])
    return {
        "https": "on" if acs.scheme == "https" else "off",
        "http_host": acs.hostname,
        "server_port": acs.port or (443 if acs.scheme == "https" else 80),
        "script_name": acs.path,
        "get_data": get or {},
        "post_data": post,
    }


def onelogin_request(job, directory):
    from onelogin.saml2.auth import OneLogin_Saml2_Auth

    auth = OneLogin_Saml2_Auth(onelogin_request_data(job, {}), onelogin_settings(job))
    if job["binding"] == "redirect":
        url = auth.login(
            return_to=job.get("relayState") or None, force_authn=bool(job.get("forceAuthn"))
        )
        return {"requestId": auth.get_last_request_id(), "url": url}
    # The POST binding: the AuthnRequest XML, signed enveloped when the SP has a key.
    from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
    from onelogin.saml2.utils import OneLogin_Saml2_Utils

    settings = auth.get_settings()
    request = OneLogin_Saml2_Authn_Request(settings, force_authn=bool(job.get("forceAuthn")))
    xml = request.get_xml()
    if job["sp"].get("key"):
        xml = OneLogin_Saml2_Utils.add_sign(
            xml,
            job["sp"]["key"],
            job["sp"]["cert"],
            sign_algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            digest_algorithm="http://www.w3.org/2001/04/xmlenc#sha256",
        )
        if isinstance(xml, bytes):
            xml = xml.decode()
    fields = {"SAMLRequest": base64.b64encode(xml.encode()).decode()}
    if job.get("relayState"):
        fields["RelayState"] = job["relayState"]
    return {
        "requestId": request.get_id(),
        "action": settings.get_idp_sso_url(),
        "fields": fields,
    }


def onelogin_validate(job, directory):
    from onelogin.saml2.auth import OneLogin_Saml2_Auth

    post = {"SAMLResponse": job["response"]}
    if job.get("relayState"):
        post["RelayState"] = job["relayState"]
    auth = OneLogin_Saml2_Auth(onelogin_request_data(job, post), onelogin_settings(job))
    auth.process_response(request_id=job.get("requestId"))
    errors = auth.get_errors()
    if errors or not auth.is_authenticated():
        raise SystemExit(
            "python3-saml refused the response: %s %s" % (errors, auth.get_last_error_reason())
        )
    return {
        "nameId": auth.get_nameid(),
        "nameIdFormat": auth.get_nameid_format(),
        "nameQualifier": auth.get_nameid_nq(),
        "spNameQualifier": auth.get_nameid_spnq(),
        "attributes": auth.get_attributes(),
        "sessionIndex": auth.get_session_index(),
        "authnContext": (auth.get_last_authn_contexts() or [None])[0],
    }


def onelogin_logout(job, directory):
    from onelogin.saml2.auth import OneLogin_Saml2_Auth

    auth = OneLogin_Saml2_Auth(onelogin_request_data(job, {}), onelogin_settings(job))
    url = auth.logout(
        return_to=job.get("relayState") or None,
        name_id=job["nameId"],
        session_index=job["sessionIndex"],
        nq=job.get("nameQualifier"),
        name_id_format=job.get("nameIdFormat"),
        spnq=job.get("spNameQualifier"),
    )
    return {"requestId": auth.get_last_request_id(), "url": url}


def onelogin_slo(job, directory):
    from onelogin.saml2.auth import OneLogin_Saml2_Auth

    params, _ = received(job)
    # The library's default: it checks a redirect signature over the query as it
    # encodes the parameters again.
    data = onelogin_request_data(job, {}, at=job["sp"]["slo"], get=params)
    auth = OneLogin_Saml2_Auth(data, onelogin_settings(job))
    url = auth.process_slo(keep_local_session=True, request_id=job.get("requestId"))
    errors = auth.get_errors()
    if errors:
        raise SystemExit(
            "python3-saml refused the logout message: %s %s"
            % (errors, auth.get_last_error_reason())
        )
    return {"url": url} if url else {"status": "Success"}


HANDLERS = {
    ("pysaml2", "request"): pysaml2_request,
    ("pysaml2", "validate"): pysaml2_validate,
    ("onelogin", "request"): onelogin_request,
    ("onelogin", "validate"): onelogin_validate,
    ("pysaml2", "logout"): pysaml2_logout,
    ("pysaml2", "slo"): pysaml2_slo,
    ("onelogin", "logout"): onelogin_logout,
    ("onelogin", "slo"): onelogin_slo,
}


def main():
    command = sys.argv[1]
    job = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as directory:
        result = HANDLERS[(job["lib"], command)](job, directory)
    json.dump(result, sys.stdout, default=str)


if __name__ == "__main__":
    main()
