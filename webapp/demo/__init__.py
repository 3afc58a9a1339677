"""The demo county: boundaries from gis_data/, synthetic cases, demo accounts."""
