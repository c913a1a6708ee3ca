"""The Slack adapter: Bolt listeners (``bot``), Block Kit rendering (``blocks``), the outbox
sender (``sender``) and the two ways to run (``runtime``: Socket Mode or HTTP)."""
