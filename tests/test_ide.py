"""The developer tools offline: GraphiQL and Swagger UI load their files from our own origin (GraphiQL
from the CDN, with SRI hashes, only where its npm files are not installed), under a strict policy;
and in a real headless Chromium both run with nothing reachable beyond 127.0.0.1."""

import base64
import hashlib
import json
import re
from pathlib import Path

import httpx2
import pytest
from fastapi import FastAPI

from api.db.engine import Database
from api.ide import CDN, GRAPHIQL_FILES, NODE_MODULES, STATIC, DeveloperTools
from api.security import create_access_token
from tests.browser import Page, browser_page, chromium
from tests.conftest import settings_for_tests
from tests.factories import make_user
from tests.processes import free_port, ready, server_process

PAGE = {"Accept": "text/html"}
SOURCES = re.compile(r'(?:src|href)="([^"]*)"')
INSTALLED = DeveloperTools.load().graphiql_installed


def policy(response: httpx2.Response) -> dict[str, str]:
    directives = (d.strip().partition(" ") for d in response.headers["content-security-policy"].split(";"))
    return {name: value for name, _, value in directives}


def fake_node_modules(root: Path) -> Path:
    """A node_modules holding a stand-in for each of GraphiQL's files, for machines without npm."""
    for file in GRAPHIQL_FILES.values():
        file.installed(root).parent.mkdir(parents=True, exist_ok=True)
        file.installed(root).write_text(f"/* {file.package} */")
    return root


class TestGraphiQLPage:
    async def test_with_the_npm_files_installed_it_loads_nothing_from_elsewhere(
        self, client: httpx2.AsyncClient, app: FastAPI, tmp_path: Path
    ) -> None:
        app.state.ide = DeveloperTools.load(fake_node_modules(tmp_path))
        page = await client.get("/graphql", headers=PAGE)
        sources = [s for s in SOURCES.findall(page.text) if s != "data:,"]
        assert len(sources) == len(GRAPHIQL_FILES) + 2  # and our own ide.css and ide.js
        assert all(s.startswith("/static/") for s in sources), sources
        assert "integrity" not in page.text
        assert "https://" not in page.text
        rules = policy(page)
        assert rules["script-src"] == "'self'"
        assert rules["connect-src"] == "'self' ws://testserver wss://testserver"
        assert (rules["frame-ancestors"], rules["default-src"]) == ("'none'", "'none'")
        assert page.headers["x-content-type-options"] == "nosniff"

    async def test_without_them_it_loads_them_from_the_cdn_checked_by_their_hashes(
        self, client: httpx2.AsyncClient, app: FastAPI, tmp_path: Path
    ) -> None:
        app.state.ide = DeveloperTools.load(tmp_path)
        page = await client.get("/graphql", headers=PAGE)
        tags = re.findall(r"<(?:script|link)[^>]*>", page.text)
        from_cdn = [t for t in tags if CDN in t]
        assert len(from_cdn) == len(GRAPHIQL_FILES)
        for tag in from_cdn:
            assert re.search(r'integrity="sha384-[A-Za-z0-9+/]{64}"', tag), tag
            assert 'crossorigin="anonymous"' in tag, tag
        assert [t for t in tags if "ide.js" in t or "ide.css" in t] == [
            t for t in tags if "/static/" in t
        ]  # our own files still come from here
        rules = policy(page)
        assert rules["script-src"] == f"'self' {CDN}"
        assert "'unsafe-inline'" not in rules["script-src"]

    async def test_a_get_with_a_query_is_an_operation_not_the_page(self, client: httpx2.AsyncClient) -> None:
        answer = await client.get("/graphql", params={"query": "{ __typename }"}, headers=PAGE)
        assert answer.json() == {"data": {"__typename": "Query"}}
        assert answer.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"

    def test_the_pinned_versions_are_those_of_the_lock(self) -> None:
        lock = json.loads((STATIC / "package-lock.json").read_text())
        manifest = json.loads((STATIC / "package.json").read_text())
        for file in GRAPHIQL_FILES.values():
            assert lock["packages"][f"node_modules/{file.package}"]["version"] == file.version
            assert manifest["dependencies"][file.package] == file.version
        assert all(p.get("integrity") for name, p in lock["packages"].items() if name)

    @pytest.mark.skipif(not INSTALLED, reason="GraphiQL's npm files are not installed (make ide)")
    def test_the_installed_files_are_the_ones_the_cdn_fallback_pins(self) -> None:
        for file in GRAPHIQL_FILES.values():
            digest = hashlib.sha384(file.installed(NODE_MODULES).read_bytes()).digest()
            assert f"sha384-{base64.b64encode(digest).decode()}" == file.integrity, file.path


class TestSwaggerUI:
    async def test_its_files_are_ours_and_its_one_inline_script_is_allowed_by_hash(
        self, client: httpx2.AsyncClient
    ) -> None:
        page = await client.get("/docs")
        assert all(s.startswith(("/static/", "/openapi.json")) for s in SOURCES.findall(page.text))
        (script,) = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        rules = policy(page)
        assert rules["script-src"] == f"'self' 'sha256-{digest}'"
        assert rules["frame-ancestors"] == "'none'"
        assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in page.text

    async def test_the_oauth2_redirect_page_answers_under_the_policy(
        self, client: httpx2.AsyncClient
    ) -> None:
        page = await client.get("/docs/oauth2-redirect")
        assert page.status_code == 200
        assert "swaggerUIRedirectOauth2" in page.text
        assert "'sha256-" in policy(page)["script-src"]

    async def test_redoc_is_gone_and_the_openapi_document_stays(self, client: httpx2.AsyncClient) -> None:
        assert (await client.get("/redoc")).status_code == 404
        assert (await client.get("/openapi.json")).status_code == 200


class TestStaticFiles:
    async def test_every_file_the_pages_name_is_served_for_good_under_its_digest(
        self, client: httpx2.AsyncClient, app: FastAPI, tmp_path: Path
    ) -> None:
        app.state.ide = DeveloperTools.load(fake_node_modules(tmp_path))
        pages = [await client.get("/graphql", headers=PAGE), await client.get("/docs")]
        urls = {s for page in pages for s in SOURCES.findall(page.text) if s.startswith("/static/")}
        assert len(urls) == len(GRAPHIQL_FILES) + 2 + 3  # and Swagger UI's script, styles, icon
        for url in sorted(urls):
            answer = await client.get(url)
            assert answer.status_code == 200, url
            assert answer.headers["content-type"].startswith(("text/javascript", "text/css", "image/png"))
            assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert answer.headers["x-content-type-options"] == "nosniff"
            again = await client.get(url, headers={"If-None-Match": answer.headers["etag"]})
            assert (again.status_code, again.content) == (304, b"")

    async def test_a_url_of_another_version_or_file_is_not_found(self, client: httpx2.AsyncClient) -> None:
        (url,) = [s for s in SOURCES.findall((await client.get("/docs")).text) if s.endswith(".js")]
        _, _, digest, name = url.split("/")
        assert (await client.get(f"/static/{'0' * len(digest)}/{name}")).status_code == 404
        assert (await client.get(f"/static/{digest}/package.json")).status_code == 404
        assert (await client.get(f"/static/{digest}/..%2Fpackage.json")).status_code == 404


def _off_host(requests: list[str], port: int) -> list[str]:
    here = (f"http://127.0.0.1:{port}/", f"ws://127.0.0.1:{port}/", "data:", "about:blank")
    return [url[:120] for url in requests if not url.startswith(here)]


def _complaints(console: list[str]) -> list[str]:
    return [line[:300] for line in console if line.startswith(("error", "exception"))]


async def _edit_query(page: Page, query: str) -> None:
    """Replace the query editor's text, and wait until GraphiQL has parsed it: the page then puts it
    in the address (q), after GraphiQL has taken its operation name, which the run button sends."""
    editor = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
    await page.evaluate(f"{editor}.setValue({json.dumps(query)})")
    await page.wait_for(f"new URL(location.href).searchParams.get('q') === {json.dumps(query)}")


@pytest.mark.skipif(chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
@pytest.mark.skipif(not INSTALLED, reason="GraphiQL's npm files are not installed (make ide, needs npm)")
async def test_graphiql_and_swagger_ui_work_in_chromium_with_nothing_beyond_127_0_0_1(
    live_database: Database,
) -> None:
    if live_database.engine.dialect.name != "sqlite":
        pytest.skip("the browser's view does not depend on the database")
    user = await make_user(live_database, email="ide@example.com", password="correct horse battery")
    token = create_access_token(settings_for_tests(), user.id).token
    port = free_port()
    url = live_database.engine.url.render_as_string(hide_password=False)
    with server_process(port, url):
        async with ready(port) as api, browser_page() as page:
            # GraphiQL: a query sent with the Headers tab's token; then a subscription, whose socket
            # carries the same headers as its connection_init payload.
            await page.open(f"http://127.0.0.1:{port}/graphql")
            await page.wait_for("!!document.querySelector('.graphiql-query-editor .CodeMirror')")
            await _edit_query(page, "query Me { me { email } }")
            await page.evaluate(
                "[...document.querySelectorAll('.graphiql-editor-tools button')]"
                ".find(b => b.textContent === 'Headers').click()"
            )
            headers = json.dumps(json.dumps({"Authorization": f"Bearer {token}"}))  # a JavaScript string
            await page.evaluate(
                f"document.querySelectorAll('.graphiql-editor-tool .CodeMirror')[1].CodeMirror.setValue({headers})"
            )
            await page.evaluate("document.querySelector('.graphiql-execute-button').click()")
            result = "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"
            shown = await page.wait_for(f"{result}.includes('ide@example.com') && {result}")
            assert json.loads(shown) == {"data": {"me": {"email": "ide@example.com"}}}

            await _edit_query(page, "subscription Jobs { myFetchJobEvents { job { total } } }")
            await page.evaluate("document.querySelector('.graphiql-execute-button').click()")
            auth = {"Authorization": f"Bearer {token}"}
            for _ in range(40):  # a job started before the subscription is in place sends it nothing
                await api.post("/api/v1/fetch-jobs", json={"urls": ["not a url"]}, headers=auth)
                if await page.evaluate(f"{result}.includes('myFetchJobEvents')"):
                    break
            shown = await page.wait_for(f"{result}.includes('myFetchJobEvents') && {result}", seconds=2)
            assert json.loads(shown)["data"]["myFetchJobEvents"]["job"] == {"total": 1}
            (init,) = [json.loads(f) for f in page.sent_frames if '"connection_init"' in f]
            assert init["payload"] == {"Authorization": f"Bearer {token}"}

            # Swagger UI: the operations render, and its Authorize button signs in by the password flow.
            await page.open(f"http://127.0.0.1:{port}/docs")
            paths = "[...document.querySelectorAll('.opblock-summary-path')].map(e => e.textContent)"
            assert "/api/v1/users/me" in await page.wait_for(f"{paths}.length > 10 && {paths}")
            await page.evaluate("document.querySelector('.btn.authorize').click()")
            for field, value in (
                ("#oauth_username", "ide@example.com"),
                ("#oauth_password", "correct horse battery"),
            ):
                await page.wait_for(f"!!document.querySelector('{field}')")
                await page.evaluate(f"document.querySelector('{field}').focus()")
                await page.command("Input.insertText", text=value)
            await page.evaluate("document.querySelector('.auth-btn-wrapper .authorize').click()")
            await page.wait_for(
                "[...document.querySelectorAll('.auth-btn-wrapper button')].some(b => b.textContent === 'Logout')"
            )

            assert _off_host(page.requests, port) == []
            assert _complaints(page.console) == []


def test_the_image_builds_graphiqls_files_in_a_stage_of_its_own() -> None:
    root = STATIC.parent.parent
    dockerfile = (root / "Dockerfile").read_text()
    stage = dockerfile.split("FROM node:20-slim AS ide", 1)[1].split("FROM ", 1)[0]
    assert "npm ci --ignore-scripts" in stage
    for file in GRAPHIQL_FILES.values():
        assert f"{file.package}/{file.path}" in stage, file.path
    assert "COPY --from=ide /served /app/api/static/node_modules" in dockerfile
    assert "api/static/node_modules" in (root / ".dockerignore").read_text().split()


async def test_swagger_ui_signs_in_through_the_token_endpoint(client: httpx2.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemes = {s["type"]: s for s in spec["components"]["securitySchemes"].values()}
    assert schemes["oauth2"]["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")
    assert (await client.get("/docs")).status_code == 200
