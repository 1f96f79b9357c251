"""The simulator: replay a per-minute traffic trace through the same decision core the operator runs."""
