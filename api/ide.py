"""The developer tools: GraphiQL (``GET /graphql`` from a browser) and Swagger UI (``/docs``), served
with their assets from our own origin under a strict Content-Security-Policy, so both work offline.

GraphiQL's files come from the npm packages locked in ``api/static/package-lock.json``, installed
into ``api/static/node_modules`` by ``make ide`` (``make run`` does it when npm is there) and by the
image's ``ide`` build stage. Where they are not installed the page loads the same files from unpkg,
each checked against the SRI hash pinned below. Swagger UI's files come from the ``fastapi-swagger``
package, a runtime dependency, so ``/docs`` always has them.
"""

import base64
import hashlib
import html
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

STATIC = Path(__file__).parent / "static"
NODE_MODULES = STATIC / "node_modules"
CDN = "https://unpkg.com"
DOCS = "/docs"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
}
# A Host header fit to be repeated inside the policy (anything else gets 'self' alone, which already
# covers ws: and wss: on the same host in current browsers).
SAFE_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@dataclass(frozen=True)
class NpmFile:
    """A file of a pinned npm package; ``integrity`` is the SRI hash of the file in its tarball."""

    package: str
    version: str
    path: str
    integrity: str

    @property
    def cdn_url(self) -> str:
        return f"{CDN}/{self.package}@{self.version}/{self.path}"

    def installed(self, node_modules: Path) -> Path:
        return node_modules / self.package / self.path


# In the order the page loads them. Versions as in package-lock.json (a test holds them together).
GRAPHIQL_FILES = {
    "graphiql.css": NpmFile(
        "graphiql",
        "3.8.3",
        "graphiql.min.css",
        "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
    ),
    "explorer.css": NpmFile(
        "@graphiql/plugin-explorer",
        "3.2.5",
        "dist/style.css",
        "sha384-YN9MumWidbWKuNj8VfH5ggrFvm9YqAoIOMnKYpeGL3dr7Eg1qnQ+SAqSthdNZCjz",
    ),
    "react.js": NpmFile(
        "react",
        "18.2.0",
        "umd/react.production.min.js",
        "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
    ),
    "react-dom.js": NpmFile(
        "react-dom",
        "18.2.0",
        "umd/react-dom.production.min.js",
        "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
    ),
    "graphiql.js": NpmFile(
        "graphiql",
        "3.8.3",
        "graphiql.min.js",
        "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
    ),
    "explorer.js": NpmFile(
        "@graphiql/plugin-explorer",
        "3.2.5",
        "dist/index.umd.js",
        "sha384-5p6hGdlOTvUy6Wf0GauxCz+xM9YB/YYvcGG+bf9msr2eyd+KVIxgRkepHgUijedJ",
    ),
}
OWN_FILES = {"ide.css": STATIC / "ide.css", "ide.js": STATIC / "ide.js"}
SWAGGER_FILES = {
    name: Path(str(resources.files("fastapi_swagger.resources") / name))
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
}


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    digest: str  # of the body, and part of the URL: a new version is a new URL, cached for good

    @property
    def path(self) -> str:
        return f"/static/{self.digest}/{self.name}"


@lru_cache(maxsize=32)
def _read(path: Path, mtime_ns: int, size: int) -> tuple[bytes, str]:
    body = path.read_bytes()
    return body, hashlib.sha256(body).hexdigest()[:20]


def load_asset(name: str, path: Path) -> Asset:
    """The file at ``path``, read once per version of it (tests build many apps)."""
    stat = path.stat()
    return Asset(name, *_read(path, stat.st_mtime_ns, stat.st_size))


def script_source(script: str) -> str:
    """The CSP source that allows this one inline script and no other."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


def content_security_policy(request: Request, *, scripts: str = "'self'", cdn: str = "") -> str:
    """Scripts only from the sources given (no inline script but one allowed by its hash), requests
    only to this host and its WebSockets, no framing. Styles may be inline: both tools set them."""
    host = request.headers.get("host", "")
    sockets = f" ws://{host} wss://{host}" if SAFE_HOST.fullmatch(host) else ""
    origins = f" {cdn}" if cdn else ""
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {scripts}{origins}",
            f"style-src 'self' 'unsafe-inline'{origins}",
            "img-src 'self' data:",
            "font-src 'self' data:",
            f"connect-src 'self'{sockets}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


GRAPHIQL_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchboard · GraphiQL</title>
<link rel="icon" href="data:,">
{styles}
</head>
<body>
<div id="graphiql">Loading…</div>
<noscript>GraphiQL needs JavaScript.</noscript>
{scripts}
</body>
</html>
"""


class DeveloperTools:
    """The files the two pages load, read once when the app is built (``load``), and the pages."""

    def __init__(self, assets: dict[str, Asset], *, graphiql_installed: bool) -> None:
        self.assets = assets
        self.graphiql_installed = graphiql_installed

    @classmethod
    def load(cls, node_modules: Path = NODE_MODULES) -> "DeveloperTools":
        """GraphiQL's npm files count as installed when every one of them is there; otherwise the
        page loads them all from the CDN, so their versions never mix."""
        assets = {name: load_asset(name, path) for name, path in (OWN_FILES | SWAGGER_FILES).items()}
        installed = all(file.installed(node_modules).is_file() for file in GRAPHIQL_FILES.values())
        if installed:
            assets |= {
                name: load_asset(name, f.installed(node_modules)) for name, f in GRAPHIQL_FILES.items()
            }
        return cls(assets, graphiql_installed=installed)

    def url(self, request: Request, name: str) -> str:
        return html.escape(request.scope.get("root_path", "").rstrip("/") + self.assets[name].path)

    def graphiql(self, request: Request) -> HTMLResponse:
        styles, scripts = [], []
        for name, file in GRAPHIQL_FILES.items():
            if self.graphiql_installed:
                source = f'"{self.url(request, name)}"'
            else:
                source = f'"{file.cdn_url}" integrity="{file.integrity}" crossorigin="anonymous"'
            if name.endswith(".css"):
                styles.append(f'<link rel="stylesheet" href={source}>')
            else:
                scripts.append(f"<script src={source}></script>")
        styles.append(f'<link rel="stylesheet" href="{self.url(request, "ide.css")}">')
        scripts.append(f'<script src="{self.url(request, "ide.js")}"></script>')
        page = GRAPHIQL_PAGE.format(styles="\n".join(styles), scripts="\n".join(scripts))
        policy = content_security_policy(request, cdn="" if self.graphiql_installed else CDN)
        return HTMLResponse(page, headers=PAGE_HEADERS | {"Content-Security-Policy": policy})

    def swagger_ui(self, request: Request) -> HTMLResponse:
        """FastAPI's Swagger UI page on our copy of its files; its one inline script (the
        configuration) is allowed by its hash."""
        app = request.app
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + app.openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=self.url(request, "swagger-ui-bundle.js"),
            swagger_css_url=self.url(request, "swagger-ui.css"),
            swagger_favicon_url=self.url(request, "favicon-32x32.png"),
            oauth2_redirect_url=root + OAUTH2_REDIRECT,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )
        return _with_inline_scripts_allowed(request, bytes(page.body).decode())


def _with_inline_scripts_allowed(request: Request, page: str) -> HTMLResponse:
    hashes = " ".join(script_source(script) for script in INLINE_SCRIPT.findall(page))
    policy = content_security_policy(request, scripts=f"'self' {hashes}".strip())
    return HTMLResponse(page, headers=PAGE_HEADERS | {"Content-Security-Policy": policy})


def tools(request: Request) -> DeveloperTools:
    found: DeveloperTools = request.app.state.ide
    return found


router = APIRouter(include_in_schema=False)


@router.get("/static/{digest}/{name}")
async def asset(request: Request, digest: str, name: str) -> Response:
    """A file of either tool. Only its current URL answers: an old one is a 404 rather than new
    content cached for good under the old name."""
    found = tools(request).assets.get(name)
    if found is None or found.digest != digest:
        return Response(status_code=404)
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable",
        "ETag": f'"{found.digest}"',
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=MEDIA_TYPES[Path(name).suffix], headers=headers)


@router.get(DOCS)
async def swagger_ui(request: Request) -> HTMLResponse:
    return tools(request).swagger_ui(request)


@router.get(OAUTH2_REDIRECT)
async def oauth2_redirect(request: Request) -> HTMLResponse:
    """Where an OAuth2 authorization server sends the browser back to Swagger UI."""
    return _with_inline_scripts_allowed(request, bytes(get_swagger_ui_oauth2_redirect_html().body).decode())
