"""Areas and boundaries: the county, its townships, villages and grids."""
