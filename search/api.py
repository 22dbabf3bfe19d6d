"""The JSON API: one NinjaAPI, a router per app (docs at /api/docs)."""

from ninja import NinjaAPI

api = NinjaAPI(title="Artwork search API", version="1", urls_namespace="api")
