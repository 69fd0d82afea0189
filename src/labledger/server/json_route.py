"""A route class for endpoints that take one JSON body: the body is validated from its bytes.

FastAPI's handler decodes a JSON body with ``json.loads``, validates the Python value it got,
then resolves every dependency through its general solver. For an endpoint of the simple shape
of ``POST /experiment`` (one pydantic model as the body, dependencies that each take only the
request), :class:`JSONBodyRoute` does the same work in one pass: pydantic-core validates the
body straight from the request's bytes (``model_validate_json``), each dependency is awaited
with the request, and the endpoint is called with what they gave.

Only a body that validates takes that path. Anything else (a body that does not validate or is
not JSON, another content type, no body) goes to FastAPI's own handler, so every error answer
is exactly the one FastAPI gives. The endpoint's signature still declares its body and
dependencies, so the OpenAPI description is FastAPI's, unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

__all__ = ["JSONBodyRoute"]

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _is_json(content_type: str | None) -> bool:
    """What FastAPI reads as JSON: ``application/json`` or ``application/*+json``."""
    if not content_type:
        return False
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


class JSONBodyRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` whose valid JSON body skips FastAPI's solver.

    The endpoint must be ``async``, return a response, take one pydantic model as its body and
    otherwise only dependencies that are ``async`` functions of the request alone; any other
    shape is refused when the route is made. Include its router without router-level
    dependencies (the fast path calls the endpoint's own); a request to an app that overrides
    one of the endpoint's dependencies (``app.dependency_overrides``) takes FastAPI's path.
    """

    def get_route_handler(self) -> Handler:
        standard = super().get_route_handler()
        dependant = self.dependant
        params = (
            dependant.path_params,
            dependant.query_params,
            dependant.header_params,
            dependant.cookie_params,
        )
        if len(dependant.body_params) != 1 or any(params) or dependant.request_param_name:
            raise TypeError(f"{self.path}: JSONBodyRoute needs one body model and nothing else")
        body = dependant.body_params[0]
        model = body.field_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{self.path}: the body of a JSONBodyRoute must be a pydantic model")
        endpoint = self.endpoint
        if not inspect.iscoroutinefunction(endpoint):
            raise TypeError(f"{self.path}: a JSONBodyRoute's endpoint must be async")
        resolvers: list[tuple[str, str, Callable[..., Awaitable[Any]]]] = []
        for dep in dependant.dependencies:
            simple = not (
                dep.dependencies
                or any((dep.path_params, dep.query_params, dep.header_params))
                or dep.cookie_params
                or dep.body_params
            )
            if not (simple and dep.name and dep.call and dep.request_param_name):
                raise TypeError(f"{self.path}: dependency {dep.name} must take only the request")
            if not inspect.iscoroutinefunction(dep.call):
                raise TypeError(f"{self.path}: dependency {dep.name} must be async")
            resolvers.append((dep.name, dep.request_param_name, dep.call))
        body_name = body.name

        calls = [call for _, _, call in resolvers]

        async def handler(request: Request) -> Response:
            if not _is_json(request.headers.get("content-type")):
                return await standard(request)
            overrides = getattr(request.app, "dependency_overrides", None)
            if overrides and any(call in overrides for call in calls):
                return await standard(request)  # FastAPI applies the overrides
            try:
                value = model.model_validate_json(await request.body())
            except ValidationError:
                return await standard(request)  # FastAPI answers the error, as it always has
            kwargs: dict[str, Any] = {body_name: value}
            for name, request_name, resolve in resolvers:
                kwargs[name] = await resolve(**{request_name: request})
            response = await endpoint(**kwargs)
            if not isinstance(response, Response):
                raise TypeError(f"{self.path}: a JSONBodyRoute's endpoint must return a Response")
            return response

        return handler
