"""The simulator's API: inject what a phone would send to us."""
