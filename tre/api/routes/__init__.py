"""The API's routers, one module per area; `ROUTERS` is what `create_app` mounts."""
