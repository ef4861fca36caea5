"""Reading records: grouping into configurations, tables (terminal, markdown), comparison
of two record sets, plots, and the tables of speed records. Never runs a framework."""
