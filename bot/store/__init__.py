"""Storage: typed models, engine set-up and migrations."""
