"""The web UI: server-rendered pages over the manager, made live with the API's event streams."""
