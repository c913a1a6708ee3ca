"""Platform adapters: translate a platform's events into Invocations and render Messages."""
