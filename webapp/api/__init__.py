"""The REST API under /api/v1: areas, cases, one case with its events, the OpenAPI document."""
