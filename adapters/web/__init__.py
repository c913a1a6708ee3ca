"""cxbot's one HTTP surface: a Starlette application served by uvicorn, in every mode of
``cxbot run`` (Slack's HTTP events, health, metrics; survey webhooks and OAuth later)."""
