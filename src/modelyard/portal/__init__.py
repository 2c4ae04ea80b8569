"""The portal: a web console served by the gateway itself at ``/portal`` (server-rendered
Jinja2 pages, vendored HTMX), on the same service layer as the admin API."""
