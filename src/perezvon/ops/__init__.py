"""Operating perezvon: metrics (Prometheus), logs (JSON or text, phones masked), request ids, health.

``metrics`` and ``logs`` import nothing of ours but the pure domain, so the API, the worker and the
CLI may all use them; ``http`` holds the health, readiness and metrics endpoints.
"""
