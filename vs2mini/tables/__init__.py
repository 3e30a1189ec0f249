"""The paper's tables: one result type, one `Run`, the main table and the other tables by kind, the registry."""
