"""SCIM 2.0 interop: Tessera's /scim/v2 checked by clients nobody here wrote.

1. scim2-tester (python-scim) runs every check it has: discovery, and create,
   read, attribute selection, replace, patch (add, remove, replace) and delete of
   users and groups with every attribute the server publishes.
2. Scenarios of our own through httpx2 (the HTTP client scim2-client uses), for
   what scim2-tester does not test: filters with every operator, sorting, index
   and cursor paging, the PATCH shapes Entra and Okta send, ETags, errors.

Usage: scim.py BASE_URL TOKEN. Prints PASS <scenario> or FAIL <scenario>: <why>
for each, and exits 1 when any failed.
"""

import sys
import traceback
import uuid

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

BASE, TOKEN = sys.argv[1], sys.argv[2]
SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"

http = Client(
    base_url=BASE,
    timeout=30,
    headers={"Authorization": f"Bearer {TOKEN}", "Accept": SCIM},
)
failed = []
RUN = uuid.uuid4().hex[:8]


def scenario(function):
    try:
        function()
        print(f"PASS {function.__name__}", flush=True)
    except Exception as error:  # noqa: BLE001 - report every failure and go on
        failed.append(function.__name__)
        print(f"FAIL {function.__name__}: {error!r}", flush=True)
        traceback.print_exc()
    return function


def send(method, path, body=None, status=None, headers=None):
    extra = {"Content-Type": SCIM} if body is not None else {}
    extra.update(headers or {})
    response = http.request(method, path, json=body, headers=extra)
    if status is not None:
        assert response.status_code == status, (
            f"{method} {path}: {response.status_code} {response.text[:500]}"
        )
    return response


def user(handle, **extra):
    body = {"schemas": [USER], "userName": f"{handle}-{RUN}"}
    body.update(extra)
    return send("POST", "/Users", body, 201).json()


def ids(response):
    return sorted(r["id"] for r in response.json().get("Resources", []))


def error_of(response, status, scim_type=None):
    assert response.status_code == status, f"{response.status_code} {response.text[:300]}"
    body = response.json()
    assert body["schemas"] == [ERROR], body
    assert body["status"] == str(status), body
    if scim_type:
        assert body.get("scimType") == scim_type, body


@scenario
def scim2TesterPassesEveryCheck():
    client = SyncSCIMClient(
        Client(base_url=BASE, timeout=30, headers={"Authorization": f"Bearer {TOKEN}", "Accept": SCIM})
    )
    results = check_server(client, raise_exceptions=False)
    bad = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL, Status.SKIPPED)]
    for r in bad:
        where = f"[{r.resource_type}] " if r.resource_type else ""
        print(f"  {r.status.name} {where}{r.title}: {r.reason}", flush=True)
    assert results, "no result"
    assert not bad, f"{len(bad)} of {len(results)} checks did not succeed"
    print(f"  {len(results)} checks succeeded", flush=True)


@scenario
def filtersWithEveryOperator():
    a = user("ann", name={"givenName": "Ann", "familyName": "O'Hara"}, title="Guide", active=True,
             emails=[{"value": f"ann-{RUN}@example.com", "type": "work", "primary": True}],
             nickName="Annie", externalId=f"A-{RUN}",
             **{ENTERPRISE: {"employeeNumber": "100", "department": "Tours"}})
    b = user("bob", name={"givenName": "Bob"}, active=False,
             emails=[{"value": f"bob-{RUN}@home.org", "type": "home"}],
             **{ENTERPRISE: {"employeeNumber": "200", "department": "Sales"}})
    c = user("cyd", title="Guide")
    mine = f'userName ew "-{RUN}"'

    def only(expression):
        response = send("GET", "/Users", status=200, headers={}) if False else http.get(
            "/Users", params={"filter": f"({expression}) and {mine}", "count": "100"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["totalResults"] == len(body.get("Resources", [])), body
        return ids(response)

    cases = [
        (f'userName eq "ANN-{RUN}"', [a]),
        ('title eq "guide"', [a, c]),
        ('title ne "Guide"', [b]),
        ('name.familyName co "hara"', [a]),
        ('name.givenName sw "b"', [b]),
        ('emails ew "HOME.ORG"', [b]),
        ("title pr", [a, c]),
        ("not (title pr)", [b]),
        ("active eq true", [a, c]),
        ("active eq false", [b]),
        (f'{ENTERPRISE}:employeeNumber gt "150"', [b]),
        ('employeeNumber ge "100" and employeeNumber lt "200"', [a]),
        ('employeeNumber le "100"', [a]),
        ('emails[type eq "work" and value co "example.com"]', [a]),
        ('emails[type eq "work"] or nickName eq "Annie"', [a]),
        ('emails.type eq "home"', [b]),
        (f'externalId eq "A-{RUN}"', [a]),
        (f'externalId eq "a-{RUN}"', []),
        ('department eq "TOURS" or department eq "sales"', [a, b]),
        ('nickName eq null', [b, c]),
        (f'id eq "{c["id"]}"', [c]),
        ('meta.created gt "2000-01-01T00:00:00Z"', [a, b, c]),
    ]
    for expression, expected in cases:
        got = only(expression)
        want = sorted(u["id"] for u in expected)
        assert got == want, f"{expression}: got {got}, want {want}"
    error_of(http.get("/Users", params={"filter": "userName eq"}), 400, "invalidFilter")
    error_of(http.get("/Users", params={"filter": 'active co "t"'}), 400, "invalidFilter")
    error_of(http.get("/Users", params={"filter": 'nosuch eq "x"'}), 400, "invalidFilter")


@scenario
def sortingAndPaging():
    made = [user(f"page{i}", displayName=f"Page {chr(ord('e') - i)}") for i in range(5)]
    mine = f'userName sw "page" and userName ew "-{RUN}"'
    response = http.get("/Users", params={"filter": mine, "sortBy": "displayName", "sortOrder": "descending"})
    names = [r["displayName"] for r in response.json()["Resources"]]
    assert names == ["Page e", "Page d", "Page c", "Page b", "Page a"], names
    first = http.get("/Users", params={"filter": mine, "sortBy": "displayName", "startIndex": "2", "count": "2"}).json()
    assert first["totalResults"] == 5 and first["startIndex"] == 2 and first["itemsPerPage"] == 2, first
    assert [r["displayName"] for r in first["Resources"]] == ["Page b", "Page c"], first
    counted = http.get("/Users", params={"filter": mine, "count": "0"}).json()
    assert counted["totalResults"] == 5 and counted.get("Resources", []) == [], counted
    # Cursor paging (draft-ietf-scim-cursor-pagination): every user once.
    seen, cursor = [], ""
    for _ in range(10):
        page = http.get("/Users", params={"filter": mine, "cursor": cursor, "count": "2"}).json()
        seen += [r["id"] for r in page.get("Resources", [])]
        cursor = page.get("nextCursor")
        if not cursor:
            break
    assert sorted(seen) == sorted(u["id"] for u in made), seen
    error_of(http.get("/Users", params={"cursor": "not-a-cursor!"}), 400, "invalidCursor")
    search = send("POST", "/Users/.search", {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": mine, "attributes": ["displayName"], "count": 3}, 200).json()
    assert search["totalResults"] == 5 and len(search["Resources"]) == 3, search
    assert set(search["Resources"][0]) == {"schemas", "id", "displayName"}, search["Resources"][0]


@scenario
def patchShapesEntraAndOktaSend():
    u = user("patch", name={"givenName": "P"}, emails=[{"value": f"p-{RUN}@example.com", "type": "work", "primary": True}])
    path = f"/Users/{u['id']}"
    # Entra: capitalised ops, a path-less replace with dotted and URN keys, booleans as strings.
    send("PATCH", path, {"schemas": [PATCH], "Operations": [
        {"op": "Replace", "value": {"active": "False", "name.familyName": "Q",
                                    f"{ENTERPRISE}:department": "Ops"}},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": f"new-{RUN}@example.com"},
        {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555 0100"},
    ]}, 200)
    got = send("GET", path, status=200).json()
    assert got["active"] is False and got["name"] == {"givenName": "P", "familyName": "Q"}, got
    assert got[ENTERPRISE]["department"] == "Ops", got
    assert got["emails"][0]["value"] == f"new-{RUN}@example.com", got
    assert got["phoneNumbers"] == [{"type": "mobile", "value": "+1 555 0100"}], got
    # Okta: remove by value filter; the whole extension replaced.
    send("PATCH", path, {"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": 'phoneNumbers[type eq "mobile"]'},
        {"op": "replace", "path": ENTERPRISE, "value": {"employeeNumber": "9"}},
    ]}, 200)
    got = send("GET", path, status=200).json()
    assert "phoneNumbers" not in got and got[ENTERPRISE] == {"employeeNumber": "9", "department": "Ops"}, got
    # An operation that cannot apply changes nothing of the request.
    error_of(send("PATCH", path, {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "nickName", "value": "X"},
        {"op": "remove", "path": "userName"}]}), 400, "mutability")
    assert "nickName" not in send("GET", path, status=200).json()
    error_of(send("PATCH", path, {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": 'emails[type eq "nope"].display', "value": "x"}]}), 400)


@scenario
def groupsAndMembers():
    a = user("member-a")
    b = user("member-b")
    g = send("POST", "/Groups", {"schemas": [GROUP], "displayName": f"Team {RUN}",
                                 "members": [{"value": a["id"]}]}, 201).json()
    path = f"/Groups/{g['id']}"
    assert [m["value"] for m in g["members"]] == [a["id"]], g
    send("PATCH", path, {"schemas": [PATCH], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": b["id"]}]},
        {"op": "Remove", "path": f'members[value eq "{a["id"]}"]'}]}, 200)
    got = send("GET", path, status=200).json()
    assert [m["value"] for m in got["members"]] == [b["id"]], got
    found = http.get("/Groups", params={"filter": f'members[value eq "{b["id"]}"] and displayName eq "team {RUN}"'}).json()
    assert [r["id"] for r in found["Resources"]] == [g["id"]], found
    member = send("GET", f"/Users/{b['id']}", status=200).json()
    assert [x["value"] for x in member["groups"]] == [g["id"]], member
    slim = http.get(path, params={"excludedAttributes": "members"}).json()
    assert "members" not in slim, slim
    error_of(send("PATCH", path, {"schemas": [PATCH], "Operations": [
        {"op": "Add", "path": "members", "value": [{"value": str(uuid.uuid4())}]}]}), 400)
    send("DELETE", path, status=204)
    error_of(send("GET", path), 404)


@scenario
def etagsAndIfMatch():
    u = user("etag")
    path = f"/Users/{u['id']}"
    response = send("GET", path, status=200)
    etag = response.headers["etag"]
    assert etag == response.json()["meta"]["version"], (etag, response.json()["meta"])
    body = {"schemas": [USER], "userName": f"etag-{RUN}", "nickName": "E"}
    changed = send("PUT", path, body, 200, {"If-Match": etag})
    assert changed.headers["etag"] != etag
    error_of(send("PUT", path, body, headers={"If-Match": etag}), 412)
    error_of(send("DELETE", path, headers={"If-Match": etag}), 412)
    send("DELETE", path, status=204, headers={"If-Match": changed.headers["etag"]})


@scenario
def errorsSayWhatWentWrong():
    u = user("dup")
    error_of(send("POST", "/Users", {"schemas": [USER], "userName": f"DUP-{RUN}"}), 409, "uniqueness")
    error_of(send("POST", "/Users", {"schemas": [USER], "userName": f"x-{RUN}", "nosuch": 1}), 400, "invalidSyntax")
    error_of(send("POST", "/Users", {"schemas": [USER], "userName": f"y-{RUN}", "password": "S3cret!x"}), 400, "invalidValue")
    error_of(send("POST", "/Users", {"schemas": [USER], "userName": f"z-{RUN}",
                                      ENTERPRISE: {"manager": {"value": str(uuid.uuid4())}}}), 400, "invalidValue")
    error_of(send("GET", f"/Users/{uuid.uuid4()}"), 404)
    error_of(send("GET", "/Users/not-an-id"), 404)
    error_of(send("GET", "/Nothing"), 404)
    response = http.post("/Users", content=b'{"userName": "a", "userName": "b"}', headers={"Content-Type": SCIM})
    error_of(response, 400, "invalidSyntax")
    response = http.post("/Users", content=b"{}", headers={"Content-Type": "text/plain"})
    error_of(response, 415)
    anonymous = Client(base_url=BASE, timeout=30).get("/Users")
    error_of(anonymous, 401)
    wrong = Client(base_url=BASE, timeout=30, headers={"Authorization": "Bearer tsr_scim_x"}).get("/Users")
    error_of(wrong, 401)
    error_of(send("GET", "/Me"), 501)
    assert send("GET", f"/Users/{u['id']}", status=200).json()["userName"] == f"dup-{RUN}"


@scenario
def bulkWithReferencesAndFailOnErrors():
    BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
    response = send("POST", "/Bulk", {"schemas": [BULK], "Operations": [
        # The group names a user made later in the same request.
        {"method": "POST", "path": "/Groups", "bulkId": "team",
         "data": {"schemas": [GROUP], "displayName": f"Bulk {RUN}", "members": [{"value": "bulkId:ada"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "ada", "data": {"schemas": [USER], "userName": f"ada-{RUN}"}},
        {"method": "PATCH", "path": "/Users/bulkId:ada", "data": {"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "nickName", "value": "Ada"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"schemas": [USER], "userName": f"ADA-{RUN}"}},
        {"method": "DELETE", "path": "/Users/bulkId:nobody"},
    ]}, 200).json()
    results = {(r["method"], r.get("bulkId")): r for r in response["Operations"]}
    assert len(response["Operations"]) == 5, response
    ada = results[("POST", "ada")]
    assert ada["status"] == "201" and ada["location"].endswith("/Users/" + ada["location"].rsplit("/", 1)[1]), ada
    team = results[("POST", "team")]
    assert team["status"] == "201", team
    assert results[("PATCH", None)]["status"] == "200", response
    dup = results[("POST", "dup")]
    assert dup["status"] == "409" and dup["response"]["scimType"] == "uniqueness", dup
    assert results[("DELETE", None)]["status"] == "409", response
    group = http.get(team["location"][len(BASE):]).json()
    assert [m["value"] for m in group["members"]] == [ada["location"].rsplit("/", 1)[1]], group
    assert http.get(ada["location"][len(BASE):]).json()["nickName"] == "Ada"
    # failOnErrors: the run stops after the first error.
    stopped = send("POST", "/Bulk", {"schemas": [BULK], "failOnErrors": 1, "Operations": [
        {"method": "DELETE", "path": f"/Users/{uuid.uuid4()}"},
        {"method": "POST", "path": "/Users", "bulkId": "never", "data": {"schemas": [USER], "userName": f"never-{RUN}"}},
    ]}, 200).json()
    assert [r["status"] for r in stopped["Operations"]] == ["404"], stopped
    assert http.get("/Users", params={"filter": f'userName eq "never-{RUN}"'}).json()["totalResults"] == 0
    too_many = {"schemas": [BULK], "Operations": [{"method": "DELETE", "path": "/Users/x"}] * 1001}
    error_of(send("POST", "/Bulk", too_many), 413, "tooMany")


@scenario
def privilegedUsersAndEdgeCases():
    # A provisioning token acts as a User and Groups Administrator: it reads the
    # break-glass Global Administrator but cannot change even its SCIM-only attributes.
    admins = http.get("/Users", params={"filter": 'userName eq "breakglass@tessera.local"'}).json()
    assert admins["totalResults"] == 1, admins
    admin = admins["Resources"][0]
    error_of(send("PATCH", f"/Users/{admin['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "nickName", "value": "pwned"}]}), 403)
    error_of(send("PATCH", f"/Users/{admin['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "externalId", "value": "someone-else"}]}), 403)
    # Sorting by dates works on both databases.
    for by in ("meta.created", "meta.lastModified"):
        assert http.get("/Users", params={"sortBy": by, "count": "2"}).status_code == 200, by
    # A filter too large to run is the client's mistake, not an outage.
    assert http.get("/Users", params={"filter": " or ".join(f'userName eq "u{i}"' for i in range(90))}).status_code == 200
    huge = " or ".join(f'emails co "u{i}"' for i in range(90))
    error_of(http.get("/Users", params={"filter": huge}), 400, "invalidFilter")
    # A replace without `active` leaves a disabled user disabled.
    u = user("keep", active=False)
    path = f"/Users/{u['id']}"
    kept = send("PUT", path, {"schemas": [USER], "userName": f"keep-{RUN}", "title": "T"}, 200).json()
    assert kept["active"] is False, kept
    # A change of only what the source holds shows in meta.lastModified filters.
    before = send("GET", path, status=200).json()["meta"]["lastModified"]
    send("PATCH", path, {"schemas": [PATCH], "Operations": [{"op": "add", "path": "nickName", "value": "K"}]}, 200)
    newer = http.get("/Users", params={"filter": f'meta.lastModified gt "{before}" and userName eq "keep-{RUN}"'}).json()
    assert newer["totalResults"] == 1, newer
    # Membership changes move a group's ETag.
    g = send("POST", "/Groups", {"schemas": [GROUP], "displayName": f"Etag {RUN}"}, 201)
    gpath = f"/Groups/{g.json()['id']}"
    changed = send("PATCH", gpath, {"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": u["id"]}]}]}, 200)
    assert changed.headers["etag"] != g.headers["etag"], (changed.headers, g.headers)
    error_of(send("PUT", gpath, {"schemas": [GROUP], "displayName": "x"}, headers={"If-Match": g.headers["etag"]}), 412)


print(f"{len(failed)} scenario(s) failed" if failed else "all scenarios passed", flush=True)
sys.exit(1 if failed else 0)
