"""OpenAPI links: from each operation that creates a resource to the operations on it, so clients
(and schemathesis's stateful tests) can follow `POST /api/v1/jobs` to `GET /api/v1/jobs/{job_id}`,
its events, cancel and relaunch without knowing the URL layout.

Derived from the document itself, so every resource gets them, present and future:
- an operation creates a resource when it is a POST answering 201, or a PUT answering 200 or 201;
- its resource's item path is the path of a GET answering the same schema (`/api/v1/jobs/{job_id}`
  for JobOut, whoever created the job), or for a POST on a collection, `<collection>/{param}`;
- every operation at the item path or below it, with no further path parameter, is a target;
- the item's parameter comes from the created body's property of the same name, else its `id`.
"""

from __future__ import annotations

import re

CREATED = {'post': ('201',), 'put': ('200', '201')}
_PARAMETER = re.compile(r'\{([^}]+)\}')


def add_links(document: dict) -> dict:
    """`document` (an OpenAPI dict) with `links` on the responses of creating operations."""
    paths = document.get('paths', {})
    item_paths = _item_paths_by_schema(paths)
    for path, operations in paths.items():
        for method, statuses in CREATED.items():
            operation = operations.get(method)
            if operation is None:
                continue
            for status in statuses:
                response = operation.get('responses', {}).get(status)
                reference = _schema_ref(response)
                if reference is None:
                    continue
                items = set(item_paths.get(reference, ()))
                if method == 'post' and not _PARAMETER.search(path):
                    items.update(candidate for candidate in paths if _PARAMETER.fullmatch(
                        candidate[len(path) + 1:]) and candidate.startswith(path + '/'))
                links = {}
                for item in sorted(items):
                    value = _parameter_value(document, reference, _PARAMETER.findall(item)[-1])
                    if value is not None:
                        links.update(_links_below(paths, item, value))
                if links:
                    response['links'] = links
    return document


def _item_paths_by_schema(paths: dict) -> dict[str, list[str]]:
    """Schema $ref -> paths ending in one parameter whose GET answers 200 with that schema."""
    found: dict[str, list[str]] = {}
    for path, operations in paths.items():
        reference = _schema_ref(operations.get('get', {}).get('responses', {}).get('200'))
        if reference is not None and path.endswith('}'):
            found.setdefault(reference, []).append(path)
    return found


def _links_below(paths: dict, item: str, value: str) -> dict:
    """Links to every operation at `item` or below it that needs only `item`'s parameters."""
    parameter = _PARAMETER.findall(item)[-1]
    wanted = set(_PARAMETER.findall(item))
    links = {}
    for path, operations in paths.items():
        if not (path == item or path.startswith(item + '/')) or set(_PARAMETER.findall(path)) != wanted:
            continue
        for method, operation in operations.items():
            if method not in ('get', 'put', 'post', 'patch', 'delete') or not isinstance(operation, dict):
                continue
            name = _link_name(method, path, item)
            links[name] = {'operationRef': '#/paths/%s/%s' % (_pointer(path), method),
                           'parameters': {parameter: value}}
    return links


def _link_name(method: str, path: str, item: str) -> str:
    rest = path[len(item):].strip('/').replace('/', '_')
    words = [method.upper(), re.sub(r'[^A-Za-z0-9]+', '_', item.rsplit('/', 2)[-2]).strip('_')]
    return '_'.join(words + ([rest] if rest else []))


def _parameter_value(document: dict, reference: str, parameter: str) -> str | None:
    properties = _properties(document, reference)
    if parameter in properties:
        return '$response.body#/%s' % parameter
    if 'id' in properties:
        return '$response.body#/id'
    return None


def _properties(document: dict, reference: str) -> dict:
    name = reference.rsplit('/', 1)[-1]
    return document.get('components', {}).get('schemas', {}).get(name, {}).get('properties', {})


def _schema_ref(response: dict | None) -> str | None:
    if not response:
        return None
    schema = response.get('content', {}).get('application/json', {}).get('schema', {})
    return schema.get('$ref')


def _pointer(path: str) -> str:
    return path.replace('~', '~0').replace('/', '~1')
