"""`monitor recompute`: re-score a time range of stored posts with another model, apart from the live counts."""
