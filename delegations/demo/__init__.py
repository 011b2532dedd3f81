"""The embedded demo's stand-in for UCP: a client CA and UCP-shaped client bundles. Used by
`make run` (the `stack` package and `manage.py demo_setup`) and the tests; the portal itself
never imports it."""
