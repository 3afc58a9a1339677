"""Door-to-door visits (入户走访, 敲门行动): targeting, plans, routes, field outcomes."""
