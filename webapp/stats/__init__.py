"""Statistics: figures, rankings, trends, the monthly report and early warning (docs/stats.md)."""
