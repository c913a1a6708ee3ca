"""Use cases: each opens no transaction of its own; the caller owns it."""
