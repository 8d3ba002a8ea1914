"""For the people who use the segments: the lookup API and its queries, the CSV export and the business view
of the report."""
