"""The portal's routes, mounted at ``/portal`` by ``server.app``."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles

from modelyard.portal import (
    auth,
    catalog_pages,
    deployment_pages,
    eval_pages,
    keys_pages,
    playground,
    shadow_pages,
    usage_pages,
)
from modelyard.portal.web import PREFIX

_STATIC = Path(__file__).resolve().parent / "static"


async def home(request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/catalog", 303)


def router() -> Router:
    """Every portal route, as one ASGI app for the ``Mount`` at ``/portal`` (``server.app``;
    ``server.portal_mount`` builds it at the portal's first request); its static files under
    ``/portal/static``."""
    return Router(routes=routes())


def routes() -> list[BaseRoute]:
    """Every portal route, relative to ``/portal``."""
    return [
        Route("/", home, methods=["GET"]),
        Route("/login", auth.login_form, methods=["GET"]),
        Route("/login", auth.login, methods=["POST"]),
        Route("/logout", auth.logout, methods=["POST"]),
        Route("/project", auth.switch_project, methods=["POST"]),
        Route("/catalog", catalog_pages.catalog, methods=["GET"]),
        Route("/model", catalog_pages.model, methods=["GET"]),
        Route("/deployments", deployment_pages.deployment_list, methods=["GET"]),
        Route("/deployments/{name}", deployment_pages.deployment_page, methods=["GET"]),
        Route("/deployments/{name}/change", deployment_pages.change, methods=["POST"]),
        Route("/deployments/{name}/rollback", deployment_pages.rollback, methods=["POST"]),
        Route("/keys", keys_pages.keys_page, methods=["GET"]),
        Route("/keys", keys_pages.create_key, methods=["POST"]),
        Route("/keys/{key_id}/revoke", keys_pages.revoke_key, methods=["POST"]),
        Route("/projects", keys_pages.create_project, methods=["POST"]),
        Route("/projects/{project_id}/limits", keys_pages.set_limits, methods=["POST"]),
        Route("/usage", usage_pages.usage, methods=["GET"]),
        Route("/usage.csv", usage_pages.usage_csv, methods=["GET"]),
        Route("/usage-rows.csv", usage_pages.usage_rows_csv, methods=["GET"]),
        Route("/playground", playground.playground, methods=["GET"]),
        Route("/playground", playground.compare, methods=["POST"]),
        Route("/playground/{cid}", playground.show, methods=["GET"]),
        Route("/playground/{cid}/{index:int}/stream", playground.stream, methods=["GET"]),
        Route("/playground/{cid}/{index:int}/item", playground.dataset_item, methods=["GET"]),
        Route("/evals", eval_pages.runs, methods=["GET"]),
        Route("/evals/shadows", shadow_pages.shadows, methods=["GET"]),
        Route("/evals/{run_id}", eval_pages.run_page, methods=["GET"]),
        Route("/evals/{run_id}/progress", eval_pages.run_progress, methods=["GET"]),
        Route("/evals/{run_id}/report", eval_pages.full_report, methods=["GET"]),
        Route("/evals/{run_id}/repoint", eval_pages.repoint_to_winner, methods=["POST"]),
        Mount("/static", StaticFiles(directory=_STATIC), name="portal-static"),
    ]
