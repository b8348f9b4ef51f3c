"""Reports: they only read results (cells, findings) and render them."""
