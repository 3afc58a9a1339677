"""Hot spots that are real, not just dense: Getis-Ord Gi* on area counts."""
