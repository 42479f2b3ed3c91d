"""The HTTP API: thin handlers over the same registry, runs and file store the pages use.

`api.routes.ROUTES` is served by app.py's `st.App` beside the dashboard, on the same port. Every
call but the OpenAPI document needs `Authorization: Bearer TOKEN` (accounts/tokens.py); errors are
JSON `{"error": {"code", "message"}}` with the sentences the command line prints.
"""
