"""API routers, one module per subsystem."""
