"""Watching the portal run: readiness checks for load balancers and compose, and the figures
Prometheus scrapes (product.md O3)."""
