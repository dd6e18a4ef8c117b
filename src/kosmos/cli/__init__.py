"""kosmosctl: install Kosmos, join clusters, inspect them, and run the local environment."""
