"""The API handlers, one module per area; each has ``register(apis)``."""
