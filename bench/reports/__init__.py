"""Reports: the paper's Tables 1-3 with our runs beside the published numbers, as text and pictures."""
