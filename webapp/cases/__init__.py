"""Cases (petitions and disputes) and their workflow."""
