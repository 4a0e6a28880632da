"""What the runs say: statistics, the papers' tables and studies, figures."""
