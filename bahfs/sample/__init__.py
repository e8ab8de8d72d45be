"""Generator of sample datasets in the BAH release layout."""
