"""The portal: dbfleet's web pages, served by the API process at `/` (server-rendered with
Jinja2, live parts with htmx; no build step, nothing loaded from elsewhere).

Layout:

    site.py          install(app): mounts static/, includes every page group's router
    session.py       login by token (the HttpOnly cookie), the caller of a page, CSRF, roles
    rendering.py     PortalRoute (security headers, HTML errors, login redirects) and render()
    pages/<group>.py one module per page group: its `router` and its `NAV` entries
    templates/       Jinja2 pages (base.html is the frame), one folder per page group
    static/          htmx.min.js (vendored, see static/VENDORED.md), portal.js, portal.css

To add a page group (say Schedules):

1. `pages/schedules.py`: `router = APIRouter(route_class=PortalRoute)` and
   `NAV = [NavEntry('Schedules', '/schedules')]`; each page takes `caller: PageCaller` (a logged-in
   caller; `FormCaller` for a POST, which also checks the form's CSRF token) and returns
   `render(request, caller, 'schedules/list.html', {...})`. Call the services below the API
   (runner_service.schedules.service, ...) with `caller.record` as the API's routes do, and
   check roles with `caller.need('operator')` before anything changes: never trust the form.
2. `templates/schedules/list.html`: `{% extends 'base.html' %}`; every form carries
   `{{ csrf_field() }}`; show buttons only where `caller.can('operator')`.
3. Add the module to `PAGES` in site.py.
4. A browser test in tests/portal/ that visits it (the `portal` fixture saves a screenshot).

No inline script or style: the Content-Security-Policy refuses both; behaviour goes into
static/portal.js, looks into static/portal.css.
"""
