"""Open311 GeoReport v2: standard clients file and follow cases (categories are services)."""
