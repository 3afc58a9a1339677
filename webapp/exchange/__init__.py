"""Data exchange: ledger (台账) import from Excel or CSV, and exports to GeoJSON, CSV, GeoPackage."""
