"""Measurements usable alone, each on arrays: identity (the one match-rate scorer), image
quality, detection rate, closed-set gallery identification, pulse preservation."""
