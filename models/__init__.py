"""ahmer."""
