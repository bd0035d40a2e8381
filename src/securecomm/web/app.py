"""The web application: the lab (compare policies for a place, no sign-in) and the policy library.

Server-rendered pages (Jinja2), enhanced by htmx where JavaScript runs and complete where it does
not: every form is a GET form whose URL is also its permanent link. Comparisons run in the
background (`jobs`), charts come from the HTML report's own code (`comparison.report`), maps are
SVG drawn on the server (`geo`, `choropleth`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import polars as pl
from fastapi import FastAPI, HTTPException, Request
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from plotly.offline import get_plotlyjs

from securecomm.comparison.report import effect_rows, effects_intro, render_report, table_rows
from securecomm.core import schema
from securecomm.core.places import counties, states
from securecomm.law.loader import UnknownPolicyError, load_policy
from securecomm.model.metrics import REPORTED
from securecomm.model.parameters import load_parameters
from securecomm.model.replications import IN_PROCESS, Runner
from securecomm.web import choropleth
from securecomm.web.geo import CANVAS, county_shapes, state_shapes, view_box
from securecomm.web.jobs import Job, JobQueue, JobStore, Results
from securecomm.web.lab import (
    PARTICIPATION_CHOICES,
    LabRequest,
    form_values,
    model_fingerprint,
    parse_request,
    participation_fields,
    place_label,
    policy_choices,
    resolve_place_text,
    scenario_choices,
    search_places,
)
from securecomm.web.library import blank_form, decide_everywhere, library_rows, policy_page, read_case

PACKAGE = resources.files("securecomm.web")
ONE_HOUR = "public, max-age=3600"
# Scripts only from this server's files (no inline script: each chart's figure is JSON data beside it);
# Plotly sets inline styles. Nothing is framed or fetched from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@cache
def _plotly_js() -> bytes:
    return get_plotlyjs().encode()


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:,.2f}"


def _signed(value: float) -> str:
    return f"{value:+,.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:+,.2f}"


@cache
def _state_links() -> list[dict[str, str]]:
    table = counties().select("state", "state_fips", "state_name").unique().sort("state_name")
    shapes = state_shapes()
    return [
        {"code": code, "name": name, "path": shapes[state_fips].path}
        for code, state_fips, name in table.iter_rows()
        if state_fips in shapes
    ]


@lru_cache(maxsize=64)
def _county_links(state: str) -> dict[str, Any]:
    table = counties().filter(pl.col("state") == state)
    if table.is_empty():
        raise HTTPException(404, f"no state {state!r}")
    shapes = county_shapes()
    links = [
        {"fips": fips, "label": f"{name}, {state}", "path": shapes[fips].path}
        for fips, name in table.select("fips", "name").iter_rows()
        if fips in shapes
    ]
    return {
        "state": state,
        "state_name": table.get_column("state_name")[0],
        "links": links,
        "view_box": view_box([shapes[link["fips"]] for link in links]),
    }


def create_app(data_dir: Path, runner: Runner = IN_PROCESS) -> FastAPI:
    """The lab and the policy library as an ASGI app; job state and results live under `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = JobStore(data_dir)
    queue = JobQueue(store, runner)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Warm what every lab page reads, so that the first visitor waits no longer than the next.
        county_shapes()
        policy_choices()
        model_fingerprint()
        search_places("a")
        queue.start()
        yield
        queue.close()

    app = FastAPI(title="securecomm lab", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    # Autoescape every template (they end in .html.j2, which select_autoescape's default would miss).
    loader = jinja2.FileSystemLoader(str(PACKAGE / "templates"))
    templates = Jinja2Templates(env=jinja2.Environment(loader=loader, autoescape=True))
    templates.env.filters["number"] = _number
    templates.env.filters["signed"] = _signed
    templates.env.globals.update(place_label=place_label, canvas=CANVAS)
    app.add_middleware(GZipMiddleware, minimum_size=1024)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    app.mount("/assets", StaticFiles(directory=str(PACKAGE / "static")), name="assets")

    def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status)

    @app.get("/vendor/htmx.min.js", include_in_schema=False)
    def htmx() -> Response:
        body = (PACKAGE / "vendor" / "htmx.min.js").read_bytes()
        return Response(body, media_type="text/javascript", headers={"Cache-Control": ONE_HOUR})

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly() -> Response:
        return Response(_plotly_js(), media_type="text/javascript", headers={"Cache-Control": ONE_HOUR})

    # --- the lab ---------------------------------------------------------------------------------

    def lab_context(values: dict[str, list[str]], errors: dict[str, str] | None = None) -> dict[str, Any]:
        map_state = (values.get("state") or [""])[0].upper()
        return {
            "form": form_values(values),
            "errors": errors or {},
            "choices": policy_choices(),
            "scenario_choices": scenario_choices(),
            "participation_choices": PARTICIPATION_CHOICES,
            "state_links": _state_links(),
            "county_map": _county_links(map_state) if map_state in states() else None,
        }

    @app.get("/", response_class=HTMLResponse)
    @app.get("/lab", response_class=HTMLResponse)
    def lab(request: Request) -> HTMLResponse:
        values = {key: request.query_params.getlist(key) for key in request.query_params}
        return page(request, "lab.html.j2", lab_context(values))

    @app.get("/lab/places", response_class=HTMLResponse)
    def places(request: Request, place: str = "") -> HTMLResponse:
        return page(request, "_place_suggestions.html.j2", {"found": search_places(place)})

    @app.get("/lab/place-field", response_class=HTMLResponse)
    def place_field(request: Request, place: str = "") -> HTMLResponse:
        try:
            code = resolve_place_text(place)
            error = ""
        except ValueError as problem:
            code, error = place, str(problem)
        context = {"form": {"place": code}, "errors": {"place": error} if error else {}, "focus": True}
        return page(request, "_place_field.html.j2", context)

    @app.get("/lab/map", response_class=HTMLResponse)
    def lab_map(request: Request, state: str = "") -> HTMLResponse:
        code = state.upper()
        context = {
            "state_links": _state_links(),
            "county_map": _county_links(code) if code else None,
            "focus": True,
        }
        return page(request, "_map.html.j2", context)

    @app.get("/lab/compare", response_class=HTMLResponse)
    def lab_compare(request: Request) -> HTMLResponse:
        values = {key: request.query_params.getlist(key) for key in request.query_params}
        lab_request, errors = parse_request(values)
        if lab_request is None:
            return page(request, "lab.html.j2", lab_context(values, errors), status=422)
        job = queue.submit(lab_request)
        return run_page(request, job, values)

    def run_page(request: Request, job: Job, values: dict[str, list[str]]) -> HTMLResponse:
        context: dict[str, Any] = {
            "job": job,
            "lab_request": job.request,
            "permalink": _permalink(request, job),
            "participation_fields": participation_fields(job.request.participation),
        }
        if job.status != "done":
            context["ahead"] = store.ahead_of(job) if job.status == "queued" else 0
            return page(request, "run.html.j2", context)
        results = _results(job.key)
        metric = (values.get("metric") or [choropleth.DEFAULT_METRIC])[0]
        policy = (values.get("map_policy") or [results.summary.baseline])[0]
        context.update(results_context(job.key, results, metric, policy))
        return page(request, "run.html.j2", context)

    def _permalink(request: Request, job: Job) -> str:
        return f"{request.base_url}lab/compare?{job.request.query()}"

    @lru_cache(maxsize=64)
    def _results(key: str) -> Results:
        return store.load(key)

    def results_context(key: str, results: Results, metric: str, policy: str) -> dict[str, Any]:
        if metric not in REPORTED:
            metric = choropleth.DEFAULT_METRIC
        if policy not in results.summary.levels:
            policy = results.summary.baseline
        return {
            "results": results,
            "policies": list(results.summary.levels),
            "rows": table_rows(results.summary),
            "charts": [
                {"chart": chart, "figure_json": chart.figure_json.replace("</", "<\\/")} for chart in results.charts
            ],
            "map": _map(key, policy, metric),
            "metrics": choropleth.metric_choices(),
            **_effects(results.request, results),
        }

    def _effects(lab_request: LabRequest, results: Results) -> dict[str, Any]:
        """The section "What it does to communities", as the HTML report has it."""
        place = place_label(lab_request.place)
        return {
            "effects": effect_rows(results.summary, place),
            "effects_intro": effects_intro(place, lab_request.replications),
        }

    @lru_cache(maxsize=256)
    def _map(key: str, policy: str, metric: str) -> choropleth.Choropleth:
        results = _results(key)
        return choropleth.build(results.counties, policy, metric, results.request.start.year)

    def _job(key: str) -> Job:
        job = store.get(key)
        if job is None:
            raise HTTPException(404, "no such run: ask the question again from the lab")
        return job

    @app.get("/lab/runs/{key}", response_class=HTMLResponse)
    def run_by_key(key: str) -> RedirectResponse:
        return RedirectResponse(f"/lab/compare?{_job(key).request.query()}", status_code=303)

    @app.get("/lab/runs/{key}/progress", response_class=HTMLResponse)
    def progress(request: Request, key: str) -> HTMLResponse:
        job = _job(key)
        context = {"job": job, "ahead": store.ahead_of(job) if job.status == "queued" else 0}
        response = page(request, "_progress.html.j2", context)
        if job.status in ("done", "failed"):
            response.headers["HX-Refresh"] = "true"
        return response

    def _done(key: str) -> Results:
        job = _job(key)
        if job.status != "done":
            raise HTTPException(409, "this run has not finished")
        return _results(key)

    @app.get("/lab/runs/{key}/map", response_class=HTMLResponse)
    def run_map(
        request: Request, key: str, metric: str = choropleth.DEFAULT_METRIC, map_policy: str = ""
    ) -> HTMLResponse:
        results = _done(key)
        job = _job(key)
        context: dict[str, Any] = {"job": job, "permalink": _permalink(request, job)}
        context.update(results_context(key, results, metric, map_policy))
        return page(request, "_choropleth.html.j2", context)

    @app.get("/lab/runs/{key}/map.csv")
    def run_map_csv(key: str, metric: str = choropleth.DEFAULT_METRIC, policy: str = "") -> Response:
        results = _done(key)
        chosen = policy if policy in results.summary.levels else results.summary.baseline
        if metric not in REPORTED:
            raise HTTPException(404, f"no metric {metric!r}")
        table = _map(key, chosen, metric).table()
        return _csv(table.write_csv(), f"map-{metric}.csv")

    @app.get("/lab/runs/{key}/charts/{name}.csv")
    def chart_csv(key: str, name: str) -> Response:
        for chart in _done(key).charts:
            if chart.id == name:
                return _csv(chart.csv, chart.csv_name)
        raise HTTPException(404, f"no chart {name!r}")

    @app.get("/lab/runs/{key}/table.csv")
    def table_csv(key: str) -> Response:
        summary = _done(key).summary
        rows = [
            {
                "policy": policy,
                "metric": metric,
                **summary.levels[policy][metric],
                **{f"difference_{k}": v for k, v in summary.differences[policy][metric].items()},
            }
            for policy in summary.levels
            for metric in REPORTED
        ]
        return _csv(pl.DataFrame(rows).write_csv(), "comparison.csv")

    @app.get("/lab/runs/{key}/effects.csv")
    def effects_csv(key: str) -> Response:
        results = _done(key)
        summary = results.summary
        rows = []
        for effect in effect_rows(summary, place_label(results.request.place)):
            for policy, by_effect in summary.effects.items():
                numbers = by_effect[effect["name"]]
                rows.append(
                    {
                        "effect": effect["name"],
                        "label": effect["label"],
                        "kind": effect["kind"],
                        "study": effect["study"],
                        "population": effect["population"],
                        "period": effect["period"],
                        "estimate": effect["estimate"],
                        "evidence": effect["strength"],
                        "status": effect["status"],
                        "policy": policy,
                        **(numbers["band"] or dict.fromkeys(("median", "low", "high"))),
                        "applies": numbers["applies"],
                        "note": numbers["note"],
                        "meaning": effect["meaning"],
                    }
                )
        if not rows:
            raise HTTPException(404, "this run did not ask for the effects")
        return _csv(pl.DataFrame(rows, infer_schema_length=None).write_csv(), "effects.csv")

    @app.get("/lab/runs/{key}/report.html")
    def report(key: str) -> Response:
        results = _done(key)
        path = store.run_dir(key) / "report.html"
        if not path.exists():
            html = render_report(results.request.plan(), results.summary, results.counties, load_parameters())
            scratch = path.with_suffix(".tmp")
            scratch.write_text(html, encoding="utf-8")
            scratch.rename(path)
        return Response(
            path.read_bytes(),
            media_type="text/html; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="securecomm-{key[:8]}-report.html"'},
        )

    # --- the policy library ------------------------------------------------------------------------

    @app.get("/policies", response_class=HTMLResponse)
    def library(request: Request) -> HTMLResponse:
        return page(request, "policies.html.j2", {"rows": library_rows()})

    @app.get("/policies/try", response_class=HTMLResponse)
    def try_case(request: Request) -> HTMLResponse:
        values = {key: request.query_params.getlist(key) for key in request.query_params}
        context: dict[str, Any] = {"schema": schema, "decisions": None, "errors": {}, "record_json": ""}
        if not values:
            context["form"] = blank_form()
            return page(request, "try.html.j2", context)
        tried = read_case(values)
        context.update(form=tried.form, errors=tried.errors)
        if tried.record is not None:
            context["decisions"] = decide_everywhere(tried.record)
            context["record_json"] = json.dumps(tried.record, ensure_ascii=False)
        return page(request, "try.html.j2", context, status=422 if tried.errors else 200)

    @app.get("/policies/{policy_id:path}", response_class=HTMLResponse)
    def policy(request: Request, policy_id: str) -> HTMLResponse:
        try:
            loaded = load_policy(policy_id)
        except UnknownPolicyError as error:
            raise HTTPException(404, str(error)) from None
        return page(request, "policy.html.j2", policy_page(loaded))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        if request.url.path.endswith(".csv"):
            return PlainTextResponse(str(error.detail), status_code=error.status_code)
        return page(request, "error.html.j2", {"status": error.status_code, "detail": error.detail}, error.status_code)

    return app


def _csv(text: str, name: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
