"""Reading and writing graphs and arrays: symbol JSON (MXNet-compatible) and atomic file writes."""
