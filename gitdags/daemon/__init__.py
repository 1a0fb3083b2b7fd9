"""The daemon: the loop that syncs every source at its interval, the HTTP listener (webhooks,
/healthz, /metrics), the ref watch, sd_notify and the Prometheus metrics. Imports the engine and
below; the CLI starts it."""
