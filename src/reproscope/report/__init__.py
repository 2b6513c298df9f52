"""From results to tables, comparisons, rankings, diagnoses and plots."""
